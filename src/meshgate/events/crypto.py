"""Per-user data keys for the personal part of events (crypto-shredding).

Each (tenant, user) gets a random AES-256-GCM key in the platform SQL store, never in the
event log. The log names the user only by a keyed pseudonym (HMAC-SHA256 of tenant and user
id under a key derived from the pepper), so once the key row is gone nothing in the log says
whose the erased part was. Erasing the user deletes the key row; from then on no process can
decrypt what was encrypted under it, wherever the ciphertext was copied, and the log itself
stays append-only.

The key rows hold the pseudonym (column ``user_id``) and the key sealed
(:mod:`meshgate.events.sealing`). Decryption always reads keys from the store (one query per
page of events), so an erasure in one process is honoured by every process at once.
Encryption keeps a key for at most ``cache_seconds``; the erasing process drops it at once,
and an event published by another process within that window after an erasure is encrypted
under the destroyed key, which makes it unreadable, never readable
(tests/events/test_data_keys.py shows both).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
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
CACHE_LIMIT = 10_000
# Nonces drawn from the OS this many at a time: one getrandom call per block instead of one
# per event (a system call costs tens of microseconds on some virtual machines).
NONCE_BLOCK = 256


class NoncePool:
    """Random 96-bit AES-GCM nonces, read from ``os.urandom`` in blocks.

    Each nonce is 12 bytes of the OS's randomness used once, exactly as ``os.urandom(12)``
    per call would be; only the system call is shared. A forked child drops its copy of the
    parent's block so the two never use the same bytes.
    """

    def __init__(self) -> None:
        self._block = b""
        self._at = 0
        self._lock = threading.Lock()
        os.register_at_fork(after_in_child=self._forget)

    def take(self) -> bytes:
        with self._lock:
            at = self._at
            if at >= len(self._block):
                self._block, at = os.urandom(NONCE_BYTES * NONCE_BLOCK), 0
            self._at = at + NONCE_BYTES
            return self._block[at : at + NONCE_BYTES]

    def _forget(self) -> None:
        self._block, self._at = b"", 0
        self._lock = threading.Lock()


_NONCES = NoncePool()


class DataKeys:
    def __init__(
        self, sql: SqlStore, sealer: Sealer, pseudonym_key: bytes, *, cache_seconds: float = 5.0
    ):
        self.sql = sql
        self.sealer = sealer
        self._pseudonym_key = pseudonym_key
        self.cache_seconds = cache_seconds
        # (tenant, owner) -> (cipher under the user's key, AAD, when to read the key again)
        self._cache: dict[tuple[str, str], tuple[AESGCM, bytes, float]] = {}
        self._owners: dict[tuple[str, str], str] = {}

    def owner_of(self, tenant: str, user_id: str) -> str:
        """The pseudonym the log uses for ``user_id``: stable, not reversible without the key."""
        owner = self._owners.get((tenant, user_id))
        if owner is None:
            message = f"{tenant}\x1f{user_id}".encode()
            owner = hmac.new(self._pseudonym_key, message, hashlib.sha256).hexdigest()[:32]
            if len(self._owners) >= CACHE_LIMIT:
                self._owners.clear()
            self._owners[(tenant, user_id)] = owner
        return owner

    async def encrypt(self, tenant: str, owner: str, personal: Any) -> str:
        """base64 of nonce + AES-GCM ciphertext of ``personal`` (JSON) under the user's key."""
        return await self.encrypt_json(tenant, owner, orjson.dumps(personal))

    async def encrypt_json(self, tenant: str, owner: str, clear: bytes) -> str:
        cached = self._cache.get((tenant, owner))
        if cached is None or cached[2] <= time.monotonic():
            cached = await self._key_for_writing(tenant, owner)
        aead, aad, _ = cached
        nonce = _NONCES.take()
        return base64.b64encode(nonce + aead.encrypt(nonce, clear, aad)).decode()

    async def decrypt_many(
        self, items: list[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], Any]:
        """(tenant, owner, ciphertext) -> clear value, or ``ERASED`` when the key is gone."""
        owners = sorted({(t, o) for t, o, _ in items})
        keys = await self._load(owners)
        out: dict[tuple[str, str, str], Any] = {}
        for tenant, owner, sealed in items:
            key = keys.get((tenant, owner))
            out[(tenant, owner, sealed)] = (
                ERASED if key is None else _open(key, tenant, owner, sealed)
            )
        return out

    async def shred(self, tenant: str, user_id: str) -> int:
        """Destroy the user's key; returns how many keys were destroyed (0 or 1)."""
        owner = self.owner_of(tenant, user_id)
        self._cache.pop((tenant, owner), None)
        return await self.sql.execute(
            "DELETE FROM user_data_keys WHERE tenant = ? AND user_id = ?", (tenant, owner)
        )

    async def _key_for_writing(self, tenant: str, owner: str) -> tuple[AESGCM, bytes, float]:
        fresh = AESGCM.generate_key(bit_length=256)
        await self.sql.execute(
            "INSERT INTO user_data_keys (tenant, user_id, data_key, created_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (tenant, user_id) DO NOTHING",
            (tenant, owner, self.sealer.seal(fresh, _context(tenant, owner)), format_time(now())),
        )
        row = await self.sql.fetch_one(
            "SELECT data_key FROM user_data_keys WHERE tenant = ? AND user_id = ?",
            (tenant, owner),
        )
        # Another process may have made the key first: use the stored one.
        key = (self._unseal(tenant, owner, row["data_key"]) if row is not None else None) or fresh
        if len(self._cache) >= CACHE_LIMIT:
            self._cache.clear()
        entry = (AESGCM(key), _aad(tenant, owner), time.monotonic() + self.cache_seconds)
        self._cache[(tenant, owner)] = entry
        return entry

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

    def _unseal(self, tenant: str, owner: str, sealed: bytes) -> bytes | None:
        try:
            return self.sealer.open(bytes(sealed), _context(tenant, owner))
        except SealError:
            return None


def _context(tenant: str, owner: str) -> str:
    return f"user-data-key\x1f{tenant}\x1f{owner}"


def _aad(tenant: str, owner: str) -> bytes:
    # Binds a ciphertext to its owner: it cannot be replayed under another user's key.
    return f"{tenant}\x1f{owner}".encode()


def _open(key: bytes, tenant: str, owner: str, sealed: str) -> Any:
    raw = base64.b64decode(sealed)
    try:
        clear = AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _aad(tenant, owner))
    except InvalidTag:
        # Encrypted under a key that has since been destroyed and replaced.
        return ERASED
    return orjson.loads(clear)
