"""Webhook subscriptions and their dead letters, kept in the platform SQL store.

A subscription belongs to one tenant and only ever receives that tenant's events. Its secret
is stored sealed (:mod:`meshgate.events.sealing`) to sign deliveries, and is never returned
by the API or written to a log.
"""

from __future__ import annotations

import base64
import builtins
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from meshgate.errors import NotFound, ValidationFailed
from meshgate.events.envelope import check_type, format_time, now
from meshgate.events.sealing import Sealer
from meshgate.sql import InTransaction, Migration, SqlStore

MIGRATIONS = [
    Migration(
        "events",
        2,
        """
        CREATE TABLE event_subscriptions (
            id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            url TEXT NOT NULL,
            types TEXT NOT NULL,
            secret TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX event_subscriptions_tenant ON event_subscriptions (tenant);
        CREATE TABLE event_dead_letters (
            id {autoinc},
            subscription_id TEXT NOT NULL,
            tenant TEXT NOT NULL,
            sequence INTEGER NOT NULL,
            event TEXT NOT NULL,
            attempts INTEGER NOT NULL,
            last_error TEXT NOT NULL,
            failed_at TEXT NOT NULL
        );
        CREATE INDEX event_dead_letters_subscription ON event_dead_letters (subscription_id, id)
        """,
    ),
    Migration(
        "events",
        3,
        """
        CREATE TABLE event_subscription_leases (
            subscription_id TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            until_ts DOUBLE PRECISION NOT NULL
        )
        """,
    ),
]
MIN_SECRET = 16
MAX_TYPES = 50


@dataclass(frozen=True, slots=True)
class Subscription:
    id: str
    tenant: str
    url: str
    types: tuple[str, ...]
    secret: str
    created_at: str

    def wants(self, event_type: str) -> bool:
        """Exact types, or prefixes written ``a.b.*``; no types means every type."""
        if not self.types:
            return True
        return any(
            event_type.startswith(t[:-1]) if t.endswith("*") else event_type == t
            for t in self.types
        )

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "url": self.url,
            "types": list(self.types),
            "created_at": self.created_at,
        }


def check_url(url: Any) -> str:
    if not isinstance(url, str) or len(url) > 2048:
        raise ValidationFailed("'url' must be an http or https URL", field="url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationFailed("'url' must be an http or https URL with a host", field="url")
    if parts.username or parts.password:
        raise ValidationFailed("'url' must not carry credentials", field="url")
    return url


def check_types(types: Any) -> tuple[str, ...]:
    if types is None:
        return ()
    if not isinstance(types, list) or len(types) > MAX_TYPES:
        raise ValidationFailed(f"'types' must be a list of at most {MAX_TYPES}", field="types")
    for t in types:
        if not isinstance(t, str):
            raise ValidationFailed("'types' must hold strings", field="types")
        check_type(t[:-2] if t.endswith(".*") else t)
    return tuple(types)


def check_secret(secret: Any) -> str:
    if not isinstance(secret, str) or not MIN_SECRET <= len(secret) <= 512:
        raise ValidationFailed(
            f"'secret' must be a string of {MIN_SECRET} to 512 characters", field="secret"
        )
    return secret


def new_id() -> str:
    return "sub_" + secrets.token_hex(8)


class SubscriptionStore:
    def __init__(self, sql: SqlStore, sealer: Sealer):
        self.sql = sql
        self.sealer = sealer

    def _seal(self, sub_id: str, secret: str) -> str:
        return base64.b64encode(self.sealer.seal(secret.encode(), sub_id)).decode()

    def _subscription(self, row: dict[str, Any]) -> Subscription:
        return Subscription(
            id=row["id"],
            tenant=row["tenant"],
            url=row["url"],
            types=tuple(orjson.loads(row["types"])),
            secret=self.sealer.open(base64.b64decode(row["secret"]), row["id"]).decode(),
            created_at=row["created_at"],
        )

    async def create(
        self,
        tenant: str,
        url: str,
        types: tuple[str, ...],
        secret: str,
        *,
        sub_id: str,
        then: InTransaction | None = None,
    ) -> Subscription:
        """Store a subscription; ``then`` runs last in its transaction (the audit record)."""
        sub = Subscription(
            id=sub_id,
            tenant=tenant,
            url=url,
            types=types,
            secret=secret,
            created_at=format_time(now()),
        )
        async with self.sql.transaction() as tx:
            await tx.execute(
                "INSERT INTO event_subscriptions (id, tenant, url, types, secret, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    sub.id,
                    tenant,
                    url,
                    orjson.dumps(list(types)).decode(),
                    self._seal(sub.id, secret),
                    sub.created_at,
                ),
            )
            if then is not None:
                await then(tx)
        return sub

    async def get(self, tenant: str, sub_id: str) -> Subscription:
        row = await self.sql.fetch_one(
            "SELECT * FROM event_subscriptions WHERE id = ? AND tenant = ?", (sub_id, tenant)
        )
        if row is None:
            raise NotFound(f"no subscription {sub_id!r}")
        return self._subscription(row)

    async def list(self, tenant: str | None = None) -> list[Subscription]:
        if tenant is None:
            rows = await self.sql.fetch_all("SELECT * FROM event_subscriptions ORDER BY id")
        else:
            rows = await self.sql.fetch_all(
                "SELECT * FROM event_subscriptions WHERE tenant = ? ORDER BY created_at, id",
                (tenant,),
            )
        return [self._subscription(r) for r in rows]

    async def delete(self, tenant: str, sub_id: str, *, then: InTransaction | None = None) -> None:
        """Remove a subscription; ``then`` runs last in its transaction (the audit record)."""
        async with self.sql.transaction() as tx:
            deleted = await tx.execute(
                "DELETE FROM event_subscriptions WHERE id = ? AND tenant = ?", (sub_id, tenant)
            )
            if not deleted:
                raise NotFound(f"no subscription {sub_id!r}")
            await tx.execute(
                "DELETE FROM event_subscription_leases WHERE subscription_id = ?", (sub_id,)
            )
            if then is not None:
                await then(tx)

    async def lease(self, sub_id: str, holder: str, seconds: float) -> bool:
        """Take or renew the right to deliver ``sub_id``; False while another process holds it.

        One process delivers a subscription at a time, so several servers on one database do
        not each deliver every event.
        """
        now_ts = time.time()
        await self.sql.execute(
            "INSERT INTO event_subscription_leases (subscription_id, holder, until_ts)"
            " VALUES (?, ?, ?) ON CONFLICT (subscription_id) DO UPDATE"
            " SET holder = excluded.holder, until_ts = excluded.until_ts"
            " WHERE event_subscription_leases.holder = excluded.holder"
            " OR event_subscription_leases.until_ts < ?",
            (sub_id, holder, now_ts + seconds, now_ts),
        )
        row = await self.sql.fetch_one(
            "SELECT holder FROM event_subscription_leases WHERE subscription_id = ?", (sub_id,)
        )
        return row is not None and row["holder"] == holder

    async def release(self, holder: str) -> None:
        await self.sql.execute("DELETE FROM event_subscription_leases WHERE holder = ?", (holder,))

    async def dead_letter(
        self, sub: Subscription, sequence: int, event: bytes, attempts: int, error: str
    ) -> None:
        await self.sql.execute(
            "INSERT INTO event_dead_letters"
            " (subscription_id, tenant, sequence, event, attempts, last_error, failed_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (sub.id, sub.tenant, sequence, event.decode(), attempts, error, format_time(now())),
        )

    async def dead_letters(
        self, tenant: str, sub_id: str, limit: int = 100
    ) -> builtins.list[dict[str, Any]]:
        await self.get(tenant, sub_id)
        rows = await self.sql.fetch_all(
            "SELECT sequence, event, attempts, last_error, failed_at FROM event_dead_letters"
            " WHERE subscription_id = ? AND tenant = ? ORDER BY id LIMIT ?",
            (sub_id, tenant, limit),
        )
        return [
            {
                "sequence": r["sequence"],
                "event": orjson.loads(r["event"]),
                "attempts": r["attempts"],
                "last_error": r["last_error"],
                "failed_at": r["failed_at"],
            }
            for r in rows
        ]
