"""One reader of the log per process, sharing what it reads with every local consumer.

The monitoring follower, the consumer groups (spend, audit references, one per webhook
subscription) each want every record past their own position, most of them the same records
at about the same time. Reading and decoding them once per consumer multiplied the cost of
each event by the number of consumers; the tap reads each stretch of the log once, keeps the
decoded records in a window, and each consumer takes from the window what matches its filter
past its own position. A consumer keeps its own position, commits and semantics: the tap only
answers "what comes after ``after``" (:meth:`TapReader.next`).

- The window holds every record with ``base < sequence <= head``; it grows by one shared read
  from ``head`` when a consumer has taken everything in it (one read at a time, the others
  wait for it), and loses the records every consumer is past.
- ``head`` moves past a stretch with no records only once a second read finds it empty too
  (a fresh JetStream consumer may briefly not count a record just appended), so a consumer
  may treat ``(after, head]`` as complete and commit past the part it has no use for.
- A consumer far behind (before ``base``: a replay, or a restart from an old offset) reads on
  its own until it reaches ``base``, then shares the window: it never holds the others back,
  and the window never grows past ``keep`` records for it.
- Once the window has caught up with the log, shared reads are at least ``linger`` seconds
  apart: while the log is busy, records gather for a moment so that every consumer handles
  them in fewer, larger batches (each batch costs a consumer a few round trips to the log and
  its store, whatever its size). Behind the log (a full batch read), the next read is at once.
- When every consumer is past ``head`` (a follower starting from a snapshot), the window jumps
  to the lowest of their positions rather than read what nobody needs.

Records are shared between consumers: nobody changes them (they are frozen; their ``data``
is treated as read-only everywhere). Personal parts stay sealed: each consumer opens what
it needs.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging

from meshgate.events.base import EVERYTHING, EventLog, Filter
from meshgate.events.envelope import Record

log = logging.getLogger("meshgate.events.tap")
WAIT_SECONDS = 1.0
LINGER_SECONDS = 0.05


class LogTap:
    def __init__(
        self,
        log_backend: EventLog,
        *,
        batch: int = 500,
        keep: int = 5_000,
        linger: float = LINGER_SECONDS,
    ):
        self.log = log_backend
        self.batch = batch
        self.keep = keep
        self.linger = linger
        self._read_at = 0.0
        self._full = False
        self.base = 0
        self.head = 0
        self._records: list[Record] = []
        self._sequences: list[int] = []
        self._empty_to: int | None = None
        self._readers: set[TapReader] = set()
        self._growth: asyncio.Task[None] | None = None
        self.reads = 0
        """Shared reads of the log so far (the figure the tap exists to keep low)."""

    def reader(self, name: str, position: int) -> TapReader:
        """A consumer's handle, at ``position``; close it when the consumer stops."""
        reader = TapReader(self, name, position)
        self._readers.add(reader)
        return reader

    async def close(self) -> None:
        growth, self._growth = self._growth, None
        if growth is not None:
            growth.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await growth
        self._readers.clear()
        self._forget()

    def _forget(self) -> None:
        self._records, self._sequences = [], []
        self.base = self.head = 0
        self._empty_to = None

    # --- what a reader sees -------------------------------------------------------------------

    def _take(self, after: int, where: Filter, limit: int) -> tuple[list[Record], int]:
        """The window's records matching ``where`` past ``after``, and the position up to
        which they are all there is (``after`` when the window has nothing past it)."""
        if after >= self.head:
            return [], after
        found: list[Record] = []
        start = bisect.bisect_right(self._sequences, after)
        records = self._records
        for i in range(start, len(records)):
            record = records[i]
            if where is EVERYTHING or where.matches(record):
                found.append(record)
                if len(found) == limit:
                    return found, record.sequence
        return found, self.head

    async def _alone(self, after: int, where: Filter, limit: int) -> tuple[list[Record], int]:
        """A reader before the window reads by itself, up to ``base``: those records were
        read by the tap already, so none of them can be missing from this read."""
        base = self.base
        records = await self.log.read(after, limit, where)
        kept = [r for r in records if r.sequence <= base]
        if len(kept) < len(records) or len(records) < limit:
            return kept, base
        return kept, kept[-1].sequence

    # --- growing the window -------------------------------------------------------------------

    async def _grow(self, within: float) -> None:
        """Wait (up to ``within``) for the shared read under way, starting one if none is."""
        growth = self._growth
        if growth is None or growth.done():
            growth = self._growth = asyncio.create_task(self._read_next(), name="log-tap")
            growth.add_done_callback(_retrieve)
        # Shielded: a reader stopping (a lease lost) must not cancel the others' read.
        done, _ = await asyncio.wait({growth}, timeout=within)
        # Cancelled only by close(): the reader's next try says whether the log is still open.
        if growth in done and not growth.cancelled() and (error := growth.exception()):
            raise error

    async def _read_next(self) -> None:
        loop = asyncio.get_running_loop()
        if not self._full and (pause := self._read_at + self.linger - loop.time()) > 0:
            await asyncio.sleep(pause)
        lowest = min((r.position for r in self._readers), default=self.head)
        if lowest > self.head:
            # Nobody needs what lies before ``lowest``: start the window there.
            self._forget()
            self.base = self.head = lowest
        head = self.head
        # Taken before the read: everything up to ``end`` is visible to that read.
        end = await self.log.last_sequence()
        records = await self.log.read(head, self.batch, EVERYTHING)
        self._read_at = loop.time()
        self._full = len(records) >= self.batch
        self.reads += 1
        if records:
            self._records += records
            self._sequences += [r.sequence for r in records]
            self.head = records[-1].sequence
            self._empty_to = None
            self._trim()
            return
        if self._empty_to is not None and self._empty_to > self.head:
            # Found empty by two reads: a stretch without records (none can appear there).
            self.head = self._empty_to
            self._empty_to = end
            self._trim()
            return
        self._empty_to = end
        await self.log.wait(self.head, within=WAIT_SECONDS)

    def _trim(self) -> None:
        """Drop what every reader is past, and what the window cannot keep."""
        inside = [r.position for r in self._readers if r.position >= self.base]
        drop = bisect.bisect_right(self._sequences, min(inside, default=self.head))
        drop = max(drop, len(self._records) - self.keep)
        if drop > 0:
            self.base = self._sequences[drop - 1]
            del self._records[:drop]
            del self._sequences[:drop]
        if not self._records:
            self.base = self.head


class TapReader:
    """One consumer's view of the tap."""

    def __init__(self, tap: LogTap, name: str, position: int):
        self.tap = tap
        self.name = name
        self.position = position
        """Where the consumer is: what the window must keep for it lies after this."""

    async def next(
        self, after: int, where: Filter, limit: int, *, within: float = WAIT_SECONDS
    ) -> tuple[list[Record], int]:
        """Records matching ``where`` after ``after`` (at most ``limit``) and the position up
        to which they are all the matching records: past ``after`` when the log has records
        there, even none matching (the reader may commit past them). ``([], after)`` when
        nothing came within ``within`` seconds."""
        tap = self.tap
        self.position = after
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while True:
            if after < tap.base:
                found, upto = await tap._alone(after, where, limit)
            else:
                found, upto = tap._take(after, where, limit)
            if found or upto > after:
                return found, upto
            left = deadline - loop.time()
            if left <= 0:
                return [], after
            await tap._grow(left)

    def close(self) -> None:
        self.tap._readers.discard(self)


def _retrieve(task: asyncio.Task[None]) -> None:
    # Every reader waiting for it sees the failure; this keeps asyncio from also logging it
    # as never retrieved when the readers gave up waiting first.
    if not task.cancelled():
        task.exception()
