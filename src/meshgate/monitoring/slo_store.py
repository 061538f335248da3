"""The SLO report of the whole cluster: every process's request buckets in the SQL store.

Each process writes the buckets its requests changed (``monitoring.slo``) every
``flush_seconds``, one row per process, tenant and bucket, replaced whole each time (writing
one twice changes nothing). The report sums the rows of every process in the window, so it
is the same on every node, lagging at most ``flush_seconds`` behind the other nodes, and it
survives restarts. Rows older than the retention are pruned by whichever process flushes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import orjson

from meshgate.monitoring.slo import Bucket, RequestWindow, summarize
from meshgate.sql import Migration, SqlStore

log = logging.getLogger("meshgate.monitoring")
ROW_CHUNK = 100
PRUNE_EVERY = 60

MIGRATIONS = [
    Migration(
        "monitoring.slo",
        1,
        """
        CREATE TABLE monitoring_slo_buckets (
            node TEXT NOT NULL,
            tenant TEXT NOT NULL,
            start BIGINT NOT NULL,
            total BIGINT NOT NULL,
            failed BIGINT NOT NULL,
            unavailable BIGINT NOT NULL,
            latency TEXT NOT NULL,
            PRIMARY KEY (node, tenant, start)
        );
        CREATE INDEX monitoring_slo_buckets_time ON monitoring_slo_buckets (tenant, start)
        """,
    )
]


class SloLedger:
    def __init__(
        self, sql: SqlStore, window: RequestWindow, *, node: str, flush_seconds: float = 1.0
    ):
        self.sql = sql
        self.window = window
        self.node = node
        self.flush_seconds = flush_seconds
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._flushes = 0

    async def start(self) -> None:
        self._task = asyncio.create_task(self._flush_forever(), name="monitoring-slo")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self.flush()
        except Exception:
            log.warning("the last SLO buckets of this process could not be written")

    async def flush(self) -> int:
        """Write the buckets changed since the last flush; returns how many."""
        async with self._lock:
            changed = self.window.take_changed()
            try:
                for start in range(0, len(changed), ROW_CHUNK):
                    await self._write(changed[start : start + ROW_CHUNK])
            except BaseException:
                self.window.mark_changed(changed)  # written again by the next flush
                raise
            self._flushes += 1
            if self._flushes % PRUNE_EVERY == 1:
                cutoff = int(self.window.clock()) - self.window.retention_seconds
                await self.sql.execute(
                    "DELETE FROM monitoring_slo_buckets WHERE start < ?", (cutoff,)
                )
            return len(changed)

    async def _write(self, rows: list[tuple[str, Bucket]]) -> None:
        params: list[Any] = []
        for tenant, b in rows:
            latency = orjson.dumps(sorted(b.latency.items())).decode()
            params += [self.node, tenant, b.start, b.total, b.failed, b.unavailable, latency]
        await self.sql.execute(
            "INSERT INTO monitoring_slo_buckets"
            " (node, tenant, start, total, failed, unavailable, latency) VALUES "
            + ", ".join(["(?, ?, ?, ?, ?, ?, ?)"] * len(rows))
            + " ON CONFLICT (node, tenant, start) DO UPDATE SET total = excluded.total,"
            " failed = excluded.failed, unavailable = excluded.unavailable,"
            " latency = excluded.latency",
            params,
        )

    async def summary(self, window_seconds: int, tenant: str | None) -> dict[str, Any]:
        """Every process's requests of ``tenant`` (None: every caller) in the window."""
        await self.flush()  # this process's own figures are current to the request
        since = self.window.since(window_seconds)
        sql = (
            "SELECT start, total, failed, unavailable, latency FROM monitoring_slo_buckets"
            " WHERE start > ?"
        )
        params: list[Any] = [since - self.window.bucket_seconds]
        if tenant is not None:
            sql += " AND tenant = ?"
            params.append(tenant)
        rows = await self.sql.fetch_all(sql, params)
        buckets = []
        for row in rows:
            bucket = Bucket(
                int(row["start"]),
                int(row["total"]),
                int(row["failed"]),
                int(row["unavailable"]),
                {int(i): int(n) for i, n in orjson.loads(row["latency"])},
            )
            buckets.append(bucket)
        return summarize(buckets)

    async def _flush_forever(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            try:
                await self.flush()
            except Exception:
                log.warning("SLO buckets could not be written; kept for the next try")
