"""Leases in the shared SQL store: work that must run once per cluster (alert evaluation,
later the rollout controller and the training runner) runs only where its lease is held.

A holder takes or renews a lease with :meth:`Leases.acquire` more often than it lasts; when
the holder stops (or freezes), the lease runs out and another process takes it over within
``seconds``. Holders are named per process (:func:`holder_name`), so two workers of one host
are two holders.
"""

from __future__ import annotations

import os
import secrets
import socket
import time
from collections.abc import Callable
from typing import Protocol

from meshgate.sql import Migration, SqlStore

MIGRATIONS = [
    Migration(
        "leases",
        1,
        """
        CREATE TABLE cluster_leases (
            name TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            until_ts DOUBLE PRECISION NOT NULL
        )
        """,
    )
]


def holder_name() -> str:
    """A name for this process, unique across hosts, processes and restarts."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


class Leases(Protocol):
    async def acquire(self, name: str, holder: str, seconds: float) -> bool:
        """Take or renew lease ``name`` for ``seconds``; False while another holder has it."""
        ...

    async def release(self, name: str, holder: str) -> None:
        """Give ``name`` up now (when ``holder`` has it), so another takes over at once."""
        ...


class SqlLeases:
    def __init__(self, sql: SqlStore, *, clock: Callable[[], float] = time.time):
        self.sql = sql
        self.clock = clock

    async def acquire(self, name: str, holder: str, seconds: float) -> bool:
        now = self.clock()
        # One statement decides: it writes only when the lease is free, expired or ours.
        await self.sql.execute(
            "INSERT INTO cluster_leases (name, holder, until_ts) VALUES (?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
            " until_ts = excluded.until_ts"
            " WHERE cluster_leases.holder = excluded.holder OR cluster_leases.until_ts < ?",
            (name, holder, now + seconds, now),
        )
        row = await self.sql.fetch_one("SELECT holder FROM cluster_leases WHERE name = ?", (name,))
        return row is not None and row["holder"] == holder

    async def release(self, name: str, holder: str) -> None:
        await self.sql.execute(
            "DELETE FROM cluster_leases WHERE name = ? AND holder = ?", (name, holder)
        )
