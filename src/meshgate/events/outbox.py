"""The outbox: events the log could not take, kept in the SQL store until a relay appends them.

A domain write (a context write, a key or registry change, feedback, a prediction) happens
first, then its event. When the event log is down at that moment, failing the request would
answer an error for a write that did happen, and a client's retry would do it twice. So the
event goes here instead, durably, and the write is acknowledged: an acknowledged write is never
without its event. :class:`OutboxRelay` appends what is kept, oldest first, once the log is back.

Each node's relay claims rows for the time of one append, so two nodes never append the same
row at once; a failed append releases them, and a claim left by a node that died is taken
over after ``CLAIM_SECONDS``. An append whose answer
was lost may still be repeated: the record keeps its id, which the NATS log de-duplicates and
every consumer may use to recognise a repeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from meshgate.errors import BackendUnavailable
from meshgate.events.base import EventLog
from meshgate.events.envelope import Record
from meshgate.sql import Migration, SqlStore

log = logging.getLogger("meshgate.events")
BATCH = 200
CLAIM_SECONDS = 30.0
IDLE_SECONDS = 1.0
"""How often a relay looks for rows another node kept (its own wake it at once)."""

# Times are DOUBLE PRECISION: PostgreSQL's REAL (4 bytes) holds today's epoch seconds only to
# about a minute, coarser than a claim lasts.
MIGRATIONS = [
    Migration(
        "event_outbox",
        1,
        "CREATE TABLE IF NOT EXISTS event_outbox ("
        " position {autoinc}, record {blob} NOT NULL, created_at DOUBLE PRECISION NOT NULL,"
        " claimed_by TEXT, claimed_at DOUBLE PRECISION)",
    )
]


@dataclass
class SinkHealth:
    """What this process last saw of the two places an event can be made durable (no I/O
    of its own: publishing and the relay keep it current).

    ``log``: the last append succeeded (or, while both were down, the relay's ping);
    ``outbox``: its last statement did. The relay claims every second or so, so an outbox
    that is back shows within that time."""

    log: bool = True
    outbox: bool = True


class EventOutbox:
    def __init__(self, sql: SqlStore):
        self.sql = sql
        self.health = SinkHealth()
        self.node = secrets.token_hex(6)
        self.kept = asyncio.Event()
        """Set when this process keeps a record: its relay runs at once."""
        self.backlog = False
        """This process kept records its relay has not appended yet: new events queue behind
        them (in order, and without first waiting for a log that just failed)."""

    async def keep(self, record: Record) -> None:
        """Durably keep ``record`` for the relay; raises BackendUnavailable if it cannot."""
        async with self._watch():
            await self.sql.execute(
                "INSERT INTO event_outbox (record, created_at) VALUES (?, ?)",
                (record.dumps(), time.time()),
            )
        self.backlog = True
        self.kept.set()

    async def count(self) -> int:
        row = await self.sql.fetch_one("SELECT COUNT(*) AS n FROM event_outbox")
        return int(row["n"]) if row else 0

    async def claim(self, limit: int = BATCH) -> list[tuple[int, Record]]:
        """The oldest rows no live relay holds, now held by this node's."""
        now = time.time()
        async with self._watch(), self.sql.transaction() as tx:
            rows = await tx.fetch_all(
                "SELECT position FROM event_outbox"
                " WHERE claimed_by IS NULL OR claimed_by = ? OR claimed_at < ?"
                " ORDER BY position LIMIT ?",
                (self.node, now - CLAIM_SECONDS, limit),
            )
            positions = [int(r["position"]) for r in rows]
            if not positions:
                return []
            marks = ", ".join("?" * len(positions))
            await tx.execute(
                f"UPDATE event_outbox SET claimed_by = ?, claimed_at = ?"
                f" WHERE position IN ({marks})",
                (self.node, now, *positions),
            )
            kept = await tx.fetch_all(
                f"SELECT position, record FROM event_outbox WHERE position IN ({marks})"
                " AND claimed_by = ? ORDER BY position",
                (*positions, self.node),
            )
        return [(int(r["position"]), Record.loads(bytes(r["record"]), 0)) for r in kept]

    @contextlib.asynccontextmanager
    async def _watch(self) -> AsyncIterator[None]:
        """Keeps ``health.outbox``: a statement refused for want of the store marks it down."""
        try:
            yield
        except BackendUnavailable:
            self.health.outbox = False
            raise
        self.health.outbox = True

    async def release(self, positions: Sequence[int]) -> None:
        marks = ", ".join("?" * len(positions))
        await self.sql.execute(
            f"UPDATE event_outbox SET claimed_by = NULL, claimed_at = NULL"
            f" WHERE position IN ({marks}) AND claimed_by = ?",
            (*positions, self.node),
        )

    async def remove(self, positions: Sequence[int]) -> None:
        marks = ", ".join("?" * len(positions))
        await self.sql.execute(
            f"DELETE FROM event_outbox WHERE position IN ({marks})", tuple(positions)
        )


class OutboxRelay:
    """Appends the outbox to the log, oldest first, whenever both answer."""

    def __init__(self, outbox: EventOutbox, event_log: EventLog):
        self.outbox = outbox
        self.log = event_log
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="events-outbox-relay")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def drain(self) -> int:
        """Append every claimable row; returns how many. Stops at the first failure."""
        done = 0
        while batch := await self.outbox.claim():
            positions = [position for position, _ in batch]
            try:
                await self.log.append([record for _, record in batch])
            except BaseException as exc:
                if isinstance(exc, BackendUnavailable):
                    self.outbox.health.log = False
                # Not appended: any node may take the rows at once, this one included.
                with contextlib.suppress(Exception):
                    await self.outbox.release(positions)
                raise
            self.outbox.health.log = True
            await self.outbox.remove(positions)
            done += len(batch)
        self.outbox.backlog = False
        return done

    async def _probe_log(self) -> None:
        """While neither the log nor the outbox takes events, predictions are refused up
        front, so no append tells when the log is back: a ping does."""
        if self.outbox.health.log or self.outbox.health.outbox:
            return
        with contextlib.suppress(Exception):
            await self.log.ping()
            self.outbox.health.log = True

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.outbox.kept.wait(), IDLE_SECONDS)
            self.outbox.kept.clear()
            try:
                if await self.drain():
                    log.info("the outbox is appended to the event log")
            except BackendUnavailable:
                # The log or the SQL store is still down: the rows stay, and so does the wake.
                self.outbox.kept.set()
                await self._probe_log()
                await asyncio.sleep(IDLE_SECONDS)
            except Exception:
                log.exception("the outbox relay failed; retrying")
                await asyncio.sleep(IDLE_SECONDS)
