"""API keys: created random, stored as peppered SHA-256 digests, verified from a cache.

A key is ``mg_`` followed by 43 URL-safe characters (256 bits). Only its HMAC-SHA256 under the
platform's pepper is stored, so a leaked database yields no usable key; the digest is looked up
by index and compared in constant time. Verified keys stay cached for ``cache_ttl`` seconds,
which bounds how long a revoked key still works on another process.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from meshgate.auth.principal import SCOPES, Principal
from meshgate.errors import BadRequest, Conflict, NotFound, Unauthenticated
from meshgate.sql import InTransaction, Migration, Row, SqlStore

BOOTSTRAP_KEY_ID = "key_bootstrap_admin"
CACHE_LIMIT = 10_000

MIGRATIONS = [
    Migration(
        "auth",
        1,
        """
        CREATE TABLE tenants (
            id TEXT PRIMARY KEY,
            rpm INTEGER,
            tpm INTEGER,
            created_at TEXT NOT NULL
        );
        CREATE TABLE api_keys (
            id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL REFERENCES tenants(id),
            digest TEXT NOT NULL UNIQUE,
            prefix TEXT NOT NULL,
            scopes TEXT NOT NULL,
            rpm INTEGER,
            tpm INTEGER,
            description TEXT,
            created_at TEXT NOT NULL,
            expires_at TEXT,
            revoked_at TEXT
        );
        CREATE INDEX api_keys_tenant ON api_keys (tenant)
        """,
    ),
    # A domain of its own, so it never races another step of "auth" for a version number.
    Migration("auth.models", 1, "ALTER TABLE api_keys ADD COLUMN models TEXT"),
]


@dataclass(frozen=True)
class Limits:
    key_rpm: int
    key_tpm: int
    tenant_rpm: int
    tenant_tpm: int


@dataclass(frozen=True)
class CreatedKey:
    id: str
    key: str
    record: dict[str, Any]


def new_key_id() -> str:
    """A fresh key id (chosen before the key is stored, so its audit record can name it)."""
    return "key_" + secrets.token_hex(8)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class KeyService:
    def __init__(
        self, sql: SqlStore, *, pepper: bytes, limits: Limits, root_tenant: str, cache_ttl: float
    ):
        self._sql = sql
        self._pepper = pepper
        self._limits = limits
        self._root_tenant = root_tenant
        self._cache_ttl = cache_ttl
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    def digest(self, key: str) -> str:
        return hmac.new(self._pepper, key.encode(), hashlib.sha256).hexdigest()

    async def authenticate(self, key: str) -> Principal:
        digest = self.digest(key)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is None or cached[0] < now:
            principal = await self._load(digest)
            if len(self._cache) >= CACHE_LIMIT:
                self._cache.clear()
            self._cache[digest] = (now + self._cache_ttl, principal)
        else:
            principal = cached[1]
        if principal is None:
            raise Unauthenticated("unknown or revoked API key")
        if principal.expires_at is not None and principal.expires_at <= datetime.now(UTC):
            raise Unauthenticated("API key expired")
        return principal

    def operator(self, key_id: str) -> Principal:
        """The platform operator as a caller that holds no key (the metrics scraper's token)."""
        lim = self._limits
        return Principal(
            key_id=key_id,
            tenant=self._root_tenant,
            scopes=frozenset({"admin"}),
            rpm=lim.key_rpm,
            tpm=lim.key_tpm,
            tenant_rpm=lim.tenant_rpm,
            tenant_tpm=lim.tenant_tpm,
            is_root=True,
        )

    async def _load(self, digest: str) -> Principal | None:
        row = await self._sql.fetch_one(
            "SELECT k.*, t.rpm AS tenant_rpm, t.tpm AS tenant_tpm FROM api_keys k"
            " JOIN tenants t ON t.id = k.tenant WHERE k.digest = ? AND k.revoked_at IS NULL",
            (digest,),
        )
        if row is None or not hmac.compare_digest(row["digest"], digest):
            return None
        lim = self._limits
        return Principal(
            key_id=row["id"],
            tenant=row["tenant"],
            scopes=frozenset(orjson.loads(row["scopes"])),
            rpm=row["rpm"] or lim.key_rpm,
            tpm=row["tpm"] or lim.key_tpm,
            tenant_rpm=row["tenant_rpm"] or lim.tenant_rpm,
            tenant_tpm=row["tenant_tpm"] or lim.tenant_tpm,
            expires_at=datetime.fromisoformat(row["expires_at"]) if row["expires_at"] else None,
            is_root=row["tenant"] == self._root_tenant,
            models=frozenset(orjson.loads(row["models"])) if row["models"] is not None else None,
        )

    async def create(
        self,
        *,
        tenant: str,
        scopes: list[str],
        rpm: int | None = None,
        tpm: int | None = None,
        expires_at: datetime | None = None,
        description: str | None = None,
        key_id: str | None = None,
        secret: str | None = None,
        then: InTransaction | None = None,
    ) -> CreatedKey:
        """A new key; ``then`` runs last in its transaction (the audit record)."""
        unknown = sorted(set(scopes) - set(SCOPES))
        if unknown:
            raise BadRequest(f"unknown scopes: {', '.join(unknown)}; known: {', '.join(SCOPES)}")
        if not scopes:
            raise BadRequest("scopes: at least one scope is required")
        if expires_at is not None and expires_at.tzinfo is None:
            expires_at = expires_at.replace(tzinfo=UTC)
        key = secret or "mg_" + secrets.token_urlsafe(32)
        key_id = key_id or new_key_id()
        created = now_iso()
        async with self._sql.transaction() as tx:
            await tx.execute(
                "INSERT INTO tenants (id, created_at) VALUES (?, ?) ON CONFLICT (id) DO NOTHING",
                (tenant, created),
            )
            await tx.execute(
                "INSERT INTO api_keys (id, tenant, digest, prefix, scopes, rpm, tpm, description,"
                " created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    key_id,
                    tenant,
                    self.digest(key),
                    key[:7],
                    orjson.dumps(sorted(scopes)).decode(),
                    rpm,
                    tpm,
                    description,
                    created,
                    expires_at.isoformat() if expires_at else None,
                ),
            )
            if then is not None:
                await then(tx)
        record = await self.get(key_id, tenant=None)
        return CreatedKey(id=key_id, key=key, record=record)

    async def get(self, key_id: str, *, tenant: str | None) -> dict[str, Any]:
        row = await self._sql.fetch_one("SELECT * FROM api_keys WHERE id = ?", (key_id,))
        if row is None or (tenant is not None and row["tenant"] != tenant):
            raise NotFound(f"API key {key_id} not found")
        return _public(row)

    async def list(self, *, tenant: str | None) -> list[dict[str, Any]]:
        if tenant is None:
            rows = await self._sql.fetch_all("SELECT * FROM api_keys ORDER BY created_at, id")
        else:
            rows = await self._sql.fetch_all(
                "SELECT * FROM api_keys WHERE tenant = ? ORDER BY created_at, id", (tenant,)
            )
        return [_public(r) for r in rows]

    async def revoke(
        self, key_id: str, *, tenant: str | None, then: InTransaction | None = None
    ) -> dict[str, Any]:
        """Revoke a key (again: no change); ``then`` runs last in the transaction."""
        await self.get(key_id, tenant=tenant)
        async with self._sql.transaction() as tx:
            await tx.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (now_iso(), key_id),
            )
            if then is not None:
                await then(tx)
        self._cache.clear()
        return await self.get(key_id, tenant=tenant)

    async def update(
        self,
        key_id: str,
        *,
        tenant: str | None,
        changes: dict[str, Any],
        then: InTransaction | None = None,
    ) -> dict[str, Any]:
        """Change a key's ``models`` allow-list (``None``: every model), ``rpm`` or ``tpm``;
        ``then`` runs last in the transaction (the audit record)."""
        await self.get(key_id, tenant=tenant)
        columns = {k: v for k, v in changes.items() if k in ("models", "rpm", "tpm")}
        if "models" in columns and columns["models"] is not None:
            columns["models"] = orjson.dumps(sorted(set(columns["models"]))).decode()
        async with self._sql.transaction() as tx:
            if columns:
                assignments = ", ".join(f"{name} = ?" for name in columns)
                await tx.execute(
                    f"UPDATE api_keys SET {assignments} WHERE id = ?",
                    (*columns.values(), key_id),
                )
            if then is not None:
                await then(tx)
        self._cache.clear()
        return await self.get(key_id, tenant=tenant)

    async def tenant(self, tenant: str) -> dict[str, Any] | None:
        row = await self._sql.fetch_one("SELECT * FROM tenants WHERE id = ?", (tenant,))
        return dict(row) if row is not None else None

    async def set_tenant_limits(
        self,
        tenant: str,
        *,
        rpm: int | None,
        tpm: int | None,
        then: InTransaction | None = None,
    ) -> None:
        """Upsert a tenant's own limits (``None``: the configured default); ``then`` runs last
        in the transaction (the audit record)."""
        async with self._sql.transaction() as tx:
            await tx.execute(
                "INSERT INTO tenants (id, rpm, tpm, created_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET rpm = excluded.rpm, tpm = excluded.tpm",
                (tenant, rpm, tpm, now_iso()),
            )
            if then is not None:
                await then(tx)
        self._cache.clear()

    async def ensure_bootstrap(self, secret: str | None) -> str | None:
        """Make the bootstrap admin key exist; returns a newly generated secret to print once.

        Safe when several nodes start at once: the one whose insert loses the race finds the
        key made by the other and goes on."""
        row = await self._sql.fetch_one(
            "SELECT digest FROM api_keys WHERE id = ?", (BOOTSTRAP_KEY_ID,)
        )
        if secret is not None:
            if row is None:
                await self._create_bootstrap(secret, "bootstrap admin (MESHGATE_ADMIN_KEY)")
            elif row["digest"] != self.digest(secret):
                await self._sql.execute(
                    "UPDATE api_keys SET digest = ?, revoked_at = NULL WHERE id = ?",
                    (self.digest(secret), BOOTSTRAP_KEY_ID),
                )
            return None
        if row is not None:
            return None
        created = await self._create_bootstrap(None, "bootstrap admin (generated at first start)")
        return created.key if created is not None else None

    async def _create_bootstrap(self, secret: str | None, description: str) -> CreatedKey | None:
        try:
            return await self.create(
                tenant=self._root_tenant,
                scopes=["admin"],
                key_id=BOOTSTRAP_KEY_ID,
                secret=secret,
                description=description,
            )
        except Conflict:  # the SQL store's unique violation
            found = await self._sql.fetch_one(
                "SELECT id FROM api_keys WHERE id = ?", (BOOTSTRAP_KEY_ID,)
            )
            if found is None:
                raise
            return None  # another node made it a moment ago


def _public(row: Row) -> dict[str, Any]:
    """A key as the API shows it: never the digest."""
    return {
        "id": row["id"],
        "tenant": row["tenant"],
        "prefix": row["prefix"],
        "scopes": orjson.loads(row["scopes"]),
        "rpm": row["rpm"],
        "tpm": row["tpm"],
        "models": orjson.loads(row["models"]) if row.get("models") is not None else None,
        "description": row["description"],
        "created_at": row["created_at"],
        "expires_at": row["expires_at"],
        "revoked_at": row["revoked_at"],
    }
