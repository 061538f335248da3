"""Upstream credentials: platform secrets that versions name and tenants are granted.

A credential is created only by the operator (the config file, or a root-tenant admin through
the API). Its secret is either sealed (AES-256-GCM under a key derived from the key pepper for
this one purpose) in the SQL store, or read from an environment variable: any variable from
the config file, and through the API only one under a prefix the operator allow-listed. A
tenant's version refers to a credential by name and may use it only once it is granted to
that tenant; the secret itself never leaves this module except as the upstream's header.
"""

from __future__ import annotations

import base64
import os
import re
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from meshgate.errors import BadRequest, Conflict, NotFound, UpstreamError
from meshgate.events.sealing import Sealer, SealError
from meshgate.security.config import CREDENTIAL_NAME, CredentialDeclaration
from meshgate.sql import InTransaction, Migration, Row, SqlSession, SqlStore

MIGRATIONS = [
    Migration(
        "credentials",
        1,
        """
        CREATE TABLE upstream_credentials (
            name TEXT PRIMARY KEY,
            source TEXT NOT NULL,
            env TEXT,
            sealed TEXT,
            description TEXT NOT NULL,
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE TABLE upstream_credential_grants (
            name TEXT NOT NULL,
            tenant TEXT NOT NULL,
            granted_at TEXT NOT NULL,
            PRIMARY KEY (name, tenant)
        )
        """,
    )
]
CREDENTIAL_PARAM = "provider.credential"


class UpstreamCredential(Protocol):
    """What a provider holds to authenticate upstream: ``await credential.secret()``."""

    name: str

    async def secret(self) -> str: ...


class CredentialRefused(BadRequest):
    """A version names a credential its tenant may not use (or that does not exist)."""


class CredentialUnavailable(UpstreamError):
    """A granted credential cannot be read now (its variable is unset, or it was deleted)."""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class CredentialVault:
    def __init__(
        self,
        sql: SqlStore,
        sealer: Sealer,
        *,
        env_prefixes: list[str],
        environ: Mapping[str, str] = os.environ,
        cache_seconds: float = 5.0,
    ):
        self._sql = sql
        self._sealer = sealer
        self._prefixes = tuple(p for p in env_prefixes if p)
        self._environ = environ
        self._cache_seconds = cache_seconds
        self._cache: dict[tuple[str, str], tuple[float, str]] = {}

    # --- the operator's side --------------------------------------------------------------

    async def declare(self, declared: list[CredentialDeclaration]) -> None:
        """Brings the config file's credentials and grants into the store (env only)."""
        for d in declared:
            found = await self._row(d.name)
            if found is None:
                await self.create(
                    d.name, env=d.env, description=d.description, actor="config", from_api=False
                )
            elif (found["source"], found["env"]) != ("env", d.env):
                await self._sql.execute(
                    "UPDATE upstream_credentials SET source = 'env', env = ?, sealed = NULL"
                    " WHERE name = ?",
                    (d.env, d.name),
                )
            for tenant in d.tenants:
                await self.grant(d.name, tenant)
        self._cache.clear()

    async def create(
        self,
        name: str,
        *,
        secret: str | None = None,
        env: str | None = None,
        description: str = "",
        actor: str,
        from_api: bool = True,
        tenants: Sequence[str] = (),
        then: InTransaction | None = None,
    ) -> dict[str, Any]:
        """A new credential granted to ``tenants``; ``then`` runs last in its transaction
        (the audit record)."""
        if not re.match(CREDENTIAL_NAME, name):
            raise BadRequest(f"credential name must match {CREDENTIAL_NAME}", param="name")
        if (secret is None) == (env is None):
            raise BadRequest("give exactly one of 'secret' and 'env'", param="secret")
        if env is not None and from_api and not env.startswith(self._prefixes or ("\0",)):
            allowed = ", ".join(self._prefixes) or "none configured"
            raise BadRequest(
                f"env: only variables under the allow-listed prefixes may be named ({allowed})",
                param="env",
            )
        if await self._row(name) is not None:
            raise Conflict(f"credential {name} already exists", param="name")
        sealed = None
        if secret is not None:
            sealed = base64.b64encode(self._sealer.seal(secret.encode(), _context(name))).decode()
        async with self._sql.transaction() as tx:
            await tx.execute(
                "INSERT INTO upstream_credentials (name, source, env, sealed, description,"
                " created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (name, "env" if env else "sealed", env, sealed, description, actor, now_iso()),
            )
            for tenant in tenants:
                await self._grant(tx, name, tenant)
            if then is not None:
                await then(tx)
        return await self.get(name)

    async def get(self, name: str) -> dict[str, Any]:
        row = await self._row(name)
        if row is None:
            raise NotFound(f"credential {name} not found")
        grants = await self._sql.fetch_all(
            "SELECT tenant FROM upstream_credential_grants WHERE name = ? ORDER BY tenant",
            (name,),
        )
        return _public(row, [g["tenant"] for g in grants])

    async def list(self) -> list[dict[str, Any]]:
        rows = await self._sql.fetch_all("SELECT * FROM upstream_credentials ORDER BY name")
        grants = await self._sql.fetch_all(
            "SELECT name, tenant FROM upstream_credential_grants ORDER BY tenant"
        )
        by_name: dict[str, list[str]] = {}
        for g in grants:
            by_name.setdefault(g["name"], []).append(g["tenant"])
        return [_public(r, by_name.get(r["name"], [])) for r in rows]

    async def grant(
        self, name: str, tenant: str, *, then: InTransaction | None = None
    ) -> dict[str, Any]:
        """Grant ``tenant`` the credential; ``then`` runs last in the transaction."""
        await self.get(name)
        async with self._sql.transaction() as tx:
            await self._grant(tx, name, tenant)
            if then is not None:
                await then(tx)
        return await self.get(name)

    @staticmethod
    async def _grant(tx: SqlSession, name: str, tenant: str) -> None:
        await tx.execute(
            "INSERT INTO upstream_credential_grants (name, tenant, granted_at) VALUES (?, ?, ?)"
            " ON CONFLICT (name, tenant) DO NOTHING",
            (name, tenant, now_iso()),
        )

    async def revoke(
        self, name: str, tenant: str, *, then: InTransaction | None = None
    ) -> dict[str, Any]:
        """Take ``tenant``'s grant back; ``then`` runs last in the transaction."""
        await self.get(name)
        async with self._sql.transaction() as tx:
            await tx.execute(
                "DELETE FROM upstream_credential_grants WHERE name = ? AND tenant = ?",
                (name, tenant),
            )
            if then is not None:
                await then(tx)
        self._cache.clear()
        return await self.get(name)

    async def delete(self, name: str, *, then: InTransaction | None = None) -> None:
        """Delete the credential and its grants; ``then`` runs last in the transaction."""
        await self.get(name)
        async with self._sql.transaction() as tx:
            await tx.execute("DELETE FROM upstream_credential_grants WHERE name = ?", (name,))
            await tx.execute("DELETE FROM upstream_credentials WHERE name = ?", (name,))
            if then is not None:
                await then(tx)
        self._cache.clear()

    # --- the tenant's side ----------------------------------------------------------------

    async def check(self, tenant: str, name: str) -> None:
        """Refuses a credential the tenant was not granted; unknown ones read the same."""
        row = await self._sql.fetch_one(
            "SELECT name FROM upstream_credential_grants WHERE name = ? AND tenant = ?",
            (name, tenant),
        )
        if row is None:
            raise CredentialRefused(
                f"credential {name!r} is not granted to this tenant; ask the platform operator",
                param=CREDENTIAL_PARAM,
            )

    async def secret(self, tenant: str, name: str) -> str:
        """The secret for an upstream call of ``tenant``; cached for a few seconds."""
        now = time.monotonic()
        cached = self._cache.get((tenant, name))
        if cached is not None and cached[0] > now:
            return cached[1]
        row = await self._sql.fetch_one(
            "SELECT c.* FROM upstream_credentials c JOIN upstream_credential_grants g"
            " ON g.name = c.name WHERE c.name = ? AND g.tenant = ?",
            (name, tenant),
        )
        if row is None:
            raise CredentialUnavailable(f"the upstream credential {name!r} is not available")
        value = self._open(row)
        if len(self._cache) > 1000:
            self._cache.clear()
        self._cache[(tenant, name)] = (now + self._cache_seconds, value)
        return value

    def ref(self, tenant: str, name: str) -> CredentialRef:
        return CredentialRef(self, tenant, name)

    def _open(self, row: Row) -> str:
        if row["source"] == "env":
            value = self._environ.get(row["env"] or "")
            if not value:
                raise CredentialUnavailable(
                    f"the upstream credential {row['name']!r} is not available"
                )
            return value
        try:
            return self._sealer.open(
                base64.b64decode(row["sealed"]), _context(row["name"])
            ).decode()
        except (SealError, ValueError) as exc:
            raise CredentialUnavailable(
                f"the upstream credential {row['name']!r} is not available"
            ) from exc

    async def _row(self, name: str) -> Row | None:
        return await self._sql.fetch_one(
            "SELECT * FROM upstream_credentials WHERE name = ?", (name,)
        )


class CredentialRef:
    """What a provider holds: one credential as one tenant may use it."""

    __slots__ = ("_vault", "name", "tenant")

    def __init__(self, vault: CredentialVault, tenant: str, name: str):
        self._vault = vault
        self.tenant = tenant
        self.name = name

    async def secret(self) -> str:
        return await self._vault.secret(self.tenant, self.name)


class EnvCredential:
    """A variable named by the config file for one of its own versions (``api_key_env``)."""

    __slots__ = ("_environ", "name")

    def __init__(self, name: str, environ: Mapping[str, str] = os.environ):
        self.name = name
        self._environ = environ

    async def secret(self) -> str:
        value = self._environ.get(self.name)
        if not value:
            raise CredentialUnavailable("the upstream credential is not available")
        return value


def _context(name: str) -> str:
    return f"upstream-credential:{name}"


def _public(row: Row, tenants: list[str]) -> dict[str, Any]:
    """A credential as the API shows it: never the secret."""
    return {
        "name": row["name"],
        "source": row["source"],
        "env": row["env"],
        "description": row["description"],
        "tenants": tenants,
        "created_by": row["created_by"],
        "created_at": row["created_at"],
    }
