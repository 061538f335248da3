"""Following the log in every process: each process applies every matching record, in order.

A consumer group (:meth:`EventService.consume`) hands each event to one runner and commits its
offset; a follower is the other shape, for state every process keeps in memory (monitoring's
figures): each process reads the same records in the same order, so each builds the same
state, whichever process appended them. Nothing is committed: a process starts from where a
snapshot of that state was taken (or from the beginning) and follows from there.

``apply`` is synchronous and the position moves only after a whole batch is applied, so
between two awaits the state and :attr:`LogFollower.position` always agree; inside
:meth:`LogFollower.paused` nothing is applied, so a snapshot may take its time (in a worker
thread) and still be exact. Records are not decrypted: personal parts stay sealed.

Records come through the process's :class:`meshgate.events.tap.LogTap` (pass the event
service's ``tap``), which reads each stretch of the log once for every local consumer; given
a bare log, the follower reads it through a tap of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence

from meshgate.events.base import EVERYTHING, EventLog, Filter
from meshgate.events.envelope import Record
from meshgate.events.service import raise_if_cancelled
from meshgate.events.tap import LogTap

log = logging.getLogger("meshgate.events.follow")
Apply = Callable[[Sequence[Record]], None]
RETRY_SECONDS = 1.0


class LogFollower:
    def __init__(
        self,
        source: EventLog | LogTap,
        apply: Apply,
        *,
        name: str,
        where: Filter = EVERYTHING,
        batch: int = 500,
    ):
        self._own_tap = not isinstance(source, LogTap)
        self.tap = source if isinstance(source, LogTap) else LogTap(source)
        self.log = self.tap.log
        self.apply = apply
        self.name = name
        self.where = where
        self.batch = batch
        self.position = 0
        """Every matching record up to this sequence is applied."""
        self._moved = asyncio.Event()
        self._applying = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    def start(self, after: int) -> None:
        self.position = after
        self._task = asyncio.create_task(self._run(), name=f"follow-{self.name}")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._own_tap:
            await self.tap.close()

    @contextlib.asynccontextmanager
    async def paused(self) -> AsyncIterator[int]:
        """Nothing is applied inside: yields the position the state is at."""
        async with self._applying:
            yield self.position

    async def caught_up(self, within: float) -> bool:
        """Whether everything appended before this call is applied (waiting up to ``within``)."""
        end = await self.log.last_sequence()
        deadline = time.monotonic() + within
        while self.position < end:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._moved.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._moved.wait(), left)
        return True

    async def _run(self) -> None:
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception:
                # The log may be down a while: the position is kept, so nothing is skipped.
                log.warning("following the log for %s failed; again in a second", self.name)
                await asyncio.sleep(RETRY_SECONDS)

    async def _follow(self) -> None:
        reader = self.tap.reader(f"follow-{self.name}", self.position)
        try:
            while True:
                raise_if_cancelled()
                records, upto = await reader.next(self.position, self.where, self.batch)
                if records:
                    async with self._applying:
                        self.apply(records)
                        self._advance(upto)
                elif upto > self.position:
                    # Past a stretch with nothing this follower wants (the tap read it twice
                    # when it held no record at all): a filtered follower stays cheap.
                    self._advance(upto)
        finally:
            reader.close()

    def _advance(self, position: int) -> None:
        if position != self.position:
            self.position = position
        self._moved.set()
