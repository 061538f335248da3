"""What every process needs before any domain: the settings, the SQL store with its schema,
the key pepper and the key service. The server builds on it (``meshgate.app``); the CLI works
on it alone, without importing the web stack.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from meshgate.auth import KeyService, Limits
from meshgate.auth.keys import MIGRATIONS as AUTH_MIGRATIONS
from meshgate.config import Settings
from meshgate.core.secrets import load_secret_file
from meshgate.delivery.flag_service import MIGRATIONS as FLAG_MIGRATIONS
from meshgate.delivery.rollout_store import MIGRATIONS as ROLLOUT_MIGRATIONS
from meshgate.economics import budgets, policies, prices, spend
from meshgate.events.crypto import MIGRATIONS as EVENT_KEY_MIGRATIONS
from meshgate.events.leases import MIGRATIONS as LEASE_MIGRATIONS
from meshgate.events.outbox import MIGRATIONS as OUTBOX_MIGRATIONS
from meshgate.events.sealing import Sealer
from meshgate.events.subscriptions import MIGRATIONS as SUBSCRIPTION_MIGRATIONS
from meshgate.gateway.middleware.idempotency import MIGRATIONS as IDEMPOTENCY_MIGRATIONS
from meshgate.governance.store import MIGRATIONS as AUDIT_MIGRATIONS
from meshgate.models.artifacts import MIGRATIONS as ARTIFACT_MIGRATIONS
from meshgate.models.registry import MIGRATIONS as REGISTRY_MIGRATIONS
from meshgate.monitoring.slo_store import MIGRATIONS as SLO_MIGRATIONS
from meshgate.monitoring.snapshots import MIGRATIONS as MONITORING_MIGRATIONS
from meshgate.security.credentials import MIGRATIONS as CREDENTIAL_MIGRATIONS
from meshgate.security.credentials import CredentialVault
from meshgate.sql import Migration, SqlStore, migrate, open_sql_store
from meshgate.training.jobs import MIGRATIONS as JOB_MIGRATIONS

ROOT_TENANT = "default"
MIGRATIONS: list[Migration] = (
    AUTH_MIGRATIONS
    + CREDENTIAL_MIGRATIONS
    + EVENT_KEY_MIGRATIONS
    + SUBSCRIPTION_MIGRATIONS
    + AUDIT_MIGRATIONS
    + REGISTRY_MIGRATIONS
    + ARTIFACT_MIGRATIONS
    + IDEMPOTENCY_MIGRATIONS
    + LEASE_MIGRATIONS
    + OUTBOX_MIGRATIONS
    + policies.MIGRATIONS
    + prices.MIGRATIONS
    + spend.MIGRATIONS
    + budgets.MIGRATIONS
    + FLAG_MIGRATIONS
    + MONITORING_MIGRATIONS
    + JOB_MIGRATIONS
    + SLO_MIGRATIONS
    + ROLLOUT_MIGRATIONS
)


@dataclass(frozen=True)
class Foundation:
    """What every process needs before any domain: the settings, the SQL store, the key
    pepper, the key service and the upstream credentials (the CLI works on this alone)."""

    settings: Settings
    sql: SqlStore
    pepper: bytes
    keys: KeyService
    credentials: CredentialVault


def load_pepper(settings: Settings) -> bytes:
    if settings.key_pepper is not None:
        return settings.key_pepper.get_secret_value().encode()
    return load_secret_file(Path(settings.data_dir) / "key_pepper").strip()


def build_foundation(settings: Settings) -> Foundation:
    sql = open_sql_store(settings.sql_url, timeout=settings.backend_timeout_seconds)
    pepper = load_pepper(settings)
    lim = settings.limits
    keys = KeyService(
        sql,
        pepper=pepper,
        limits=Limits(lim.key_rpm, lim.key_tpm, lim.tenant_rpm, lim.tenant_tpm),
        root_tenant=ROOT_TENANT,
        cache_ttl=settings.auth_cache_ttl_seconds,
    )
    credentials = CredentialVault(
        sql,
        Sealer(pepper, "upstream-credentials"),
        env_prefixes=settings.security.credential_env_prefixes,
    )
    return Foundation(settings, sql, pepper, keys, credentials)


async def prepare(base: Foundation) -> None:
    """Migrate the schema, declare the configured credentials and make the bootstrap admin
    key; prints a generated key once."""
    await migrate(base.sql, MIGRATIONS)
    await base.credentials.declare(base.settings.security.credentials)
    admin_key = base.settings.admin_key
    generated = await base.keys.ensure_bootstrap(
        admin_key.get_secret_value() if admin_key else None
    )
    if generated:
        print(
            "\n  Meshgate created a bootstrap admin key. It is shown this once; keep it:\n\n"
            f"    {generated}\n\n  (set MESHGATE_ADMIN_KEY to choose your own)\n",
            file=sys.stderr,
            flush=True,
        )
