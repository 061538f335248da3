"""Snapshots of monitoring's state in the shared SQL store, so a starting process need not
read the whole log: it loads the newest snapshot and follows the log after its sequence.

One row per name; a write never replaces a snapshot taken at a later sequence (two writers
racing after a lease handover leave the newer one).
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from meshgate.sql import Migration, SqlStore

MIGRATIONS = [
    Migration(
        "monitoring",
        1,
        """
        CREATE TABLE monitoring_snapshots (
            name TEXT PRIMARY KEY,
            sequence BIGINT NOT NULL,
            state TEXT NOT NULL,
            written_at DOUBLE PRECISION NOT NULL
        )
        """,
    )
]


class SnapshotStore:
    def __init__(self, sql: SqlStore):
        self.sql = sql

    async def load(self, name: str) -> tuple[int, dict[str, Any]] | None:
        """(sequence, state) of the newest snapshot, or None."""
        row = await self.sql.fetch_one(
            "SELECT sequence, state FROM monitoring_snapshots WHERE name = ?", (name,)
        )
        if row is None:
            return None
        return int(row["sequence"]), orjson.loads(row["state"])

    async def save(self, name: str, sequence: int, state: bytes) -> None:
        """Store ``state`` (JSON) as of ``sequence``, unless a later one is stored."""
        await self.sql.execute(
            "INSERT INTO monitoring_snapshots (name, sequence, state, written_at)"
            " VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET sequence = excluded.sequence,"
            " state = excluded.state, written_at = excluded.written_at"
            " WHERE monitoring_snapshots.sequence < excluded.sequence",
            (name, sequence, state.decode(), time.time()),
        )

    async def delete(self, name: str) -> None:
        await self.sql.execute("DELETE FROM monitoring_snapshots WHERE name = ?", (name,))
