"""Model artifacts (ONNX graphs, skops files) stored once for every node, by content.

A version's ``provider.artifact`` may be ``sha256:<hex>``: the bytes live in the platform's
SQL store under their digest, so every node reads the same artifact and a version can never
point at a file that exists only in one node's data directory. Each node keeps a local copy
in its cache directory, named by digest and checked against it, because ONNX Runtime and
skops load from a file.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from datetime import UTC, datetime
from pathlib import Path

from meshgate.errors import NotFound
from meshgate.sql import Migration, SqlStore

PREFIX = "sha256:"
REF = re.compile(r"^sha256:[0-9a-f]{64}$")
MIGRATIONS = [
    Migration(
        "artifacts",
        1,
        "CREATE TABLE IF NOT EXISTS artifacts ("
        " sha256 TEXT PRIMARY KEY, size INTEGER NOT NULL, data {blob} NOT NULL,"
        " created_at TEXT NOT NULL)",
    )
]


def is_stored(artifact: str) -> bool:
    """Whether ``artifact`` names stored content (``sha256:<hex>``) rather than a path."""
    return artifact.startswith(PREFIX)


def digest_of(ref: str) -> str:
    if not REF.match(ref):
        raise NotFound(f"artifact {ref!r} is not a sha256:<64 hex digits> reference")
    return ref.removeprefix(PREFIX)


class ArtifactStore:
    def __init__(self, sql: SqlStore, cache_dir: Path):
        self.sql = sql
        self.cache_dir = cache_dir

    async def put(self, data: bytes) -> str:
        """Store ``data`` (once, whoever else stores the same bytes); returns its reference."""
        digest = hashlib.sha256(data).hexdigest()
        await self.sql.execute(
            "INSERT INTO artifacts (sha256, size, data, created_at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (sha256) DO NOTHING",
            (digest, len(data), data, datetime.now(UTC).isoformat()),
        )
        return PREFIX + digest

    async def exists(self, ref: str) -> bool:
        row = await self.sql.fetch_one(
            "SELECT size FROM artifacts WHERE sha256 = ?", (digest_of(ref),)
        )
        return row is not None

    def local_path(self, ref: str) -> Path:
        return self.cache_dir / digest_of(ref)

    async def fetch(self, ref: str) -> Path:
        """The artifact as a local file, copied from the store on first use."""
        path = self.local_path(ref)
        if path.is_file():
            return path
        digest = digest_of(ref)
        row = await self.sql.fetch_one("SELECT data FROM artifacts WHERE sha256 = ?", (digest,))
        if row is None:
            raise NotFound(f"artifact {ref} is not in the artifact store")
        data = bytes(row["data"])
        if hashlib.sha256(data).hexdigest() != digest:
            raise NotFound(f"artifact {ref} is damaged in the store")
        await asyncio.to_thread(_write_atomically, path, data)
        return path


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
