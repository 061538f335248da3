"""Per-user data keys for the personal part of events (crypto-shredding).

Each (tenant, user) gets a random AES-256-GCM key in the platform SQL store, never in the
event log. Erasing the user deletes the key row; from then on no process can decrypt what was
encrypted under it, wherever the ciphertext was copied, so the log itself stays append-only.

The keys themselves are stored sealed (:mod:`meshgate.events.sealing`). Decryption always
reads keys from the store (one query per page of events), so an erasure in
one process is honoured by every process at once. Encryption keeps a key for at most
``cache_seconds``: an event published by another process within that window after an erasure
is encrypted under the destroyed key, which makes it unreadable, never readable.
"""

from __future__ import annotations

import base64
import os
import time
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from meshgate.events.envelope import ERASED, format_time, now
from meshgate.events.sealing import Sealer, SealError
from meshgate.sql import Migration, SqlStore

MIGRATIONS = [
    Migration(
        "events",
        1,
        """
        CREATE TABLE user_data_keys (
            tenant TEXT NOT NULL,
            user_id TEXT NOT NULL,
            data_key {blob} NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (tenant, user_id)
        )
        """,
    )
]
NONCE_BYTES = 12


def _context(tenant: str, user_id: str) -> str:
    return f"user-data-key\x1f{tenant}\x1f{user_id}"


def _aad(tenant: str, user_id: str) -> bytes:
    # Binds a ciphertext to its owner: it cannot be replayed under another user's key.
    return f"{tenant}\x1f{user_id}".encode()


class DataKeys:
    def __init__(self, sql: SqlStore, sealer: Sealer, *, cache_seconds: float = 5.0):
        self.sql = sql
        self.sealer = sealer
        self.cache_seconds = cache_seconds
        self._cache: dict[tuple[str, str], tuple[bytes, float]] = {}

    async def encrypt(self, tenant: str, user_id: str, personal: Any) -> str:
        key = await self._key_for_writing(tenant, user_id)
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(key).encrypt(nonce, orjson.dumps(personal), _aad(tenant, user_id))
        return base64.b64encode(nonce + sealed).decode()

    async def decrypt_many(
        self, items: list[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], Any]:
        """(tenant, user_id, ciphertext) -> clear value, or ``ERASED`` when the key is gone."""
        owners = sorted({(t, u) for t, u, _ in items})
        keys = await self._load(owners)
        out: dict[tuple[str, str, str], Any] = {}
        for tenant, user_id, sealed in items:
            key = keys.get((tenant, user_id))
            out[(tenant, user_id, sealed)] = (
                ERASED if key is None else _open(key, tenant, user_id, sealed)
            )
        return out

    async def shred(self, tenant: str, user_id: str) -> int:
        """Destroy the user's key; returns how many keys were destroyed (0 or 1)."""
        self._cache.pop((tenant, user_id), None)
        return await self.sql.execute(
            "DELETE FROM user_data_keys WHERE tenant = ? AND user_id = ?", (tenant, user_id)
        )

    async def _key_for_writing(self, tenant: str, user_id: str) -> bytes:
        cached = self._cache.get((tenant, user_id))
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        fresh = AESGCM.generate_key(bit_length=256)
        await self.sql.execute(
            "INSERT INTO user_data_keys (tenant, user_id, data_key, created_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (tenant, user_id) DO NOTHING",
            (
                tenant,
                user_id,
                self.sealer.seal(fresh, _context(tenant, user_id)),
                format_time(now()),
            ),
        )
        row = await self.sql.fetch_one(
            "SELECT data_key FROM user_data_keys WHERE tenant = ? AND user_id = ?",
            (tenant, user_id),
        )
        # Another process may have made the key first: use the stored one.
        key = self._unseal(tenant, user_id, row["data_key"]) if row is not None else None
        key = key or fresh
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[(tenant, user_id)] = (key, time.monotonic() + self.cache_seconds)
        return key

    async def _load(self, owners: list[tuple[str, str]]) -> dict[tuple[str, str], bytes]:
        keys: dict[tuple[str, str], bytes] = {}
        for start in range(0, len(owners), 200):
            chunk = owners[start : start + 200]
            where = " OR ".join(["(tenant = ? AND user_id = ?)"] * len(chunk))
            params = [v for owner in chunk for v in owner]
            for row in await self.sql.fetch_all(
                f"SELECT tenant, user_id, data_key FROM user_data_keys WHERE {where}", params
            ):
                key = self._unseal(row["tenant"], row["user_id"], row["data_key"])
                if key is not None:
                    keys[(row["tenant"], row["user_id"])] = key
        return keys

    def _unseal(self, tenant: str, user_id: str, sealed: bytes) -> bytes | None:
        try:
            return self.sealer.open(bytes(sealed), _context(tenant, user_id))
        except SealError:
            return None


def _open(key: bytes, tenant: str, user_id: str, sealed: str) -> Any:
    raw = base64.b64decode(sealed)
    try:
        clear = AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _aad(tenant, user_id))
    except InvalidTag:
        # Encrypted under a key that has since been destroyed and replaced.
        return ERASED
    return orjson.loads(clear)
