"""A consumer group run by one process of the cluster at a time, under a lease.

Each process runs :class:`LeasedGroup`; the one holding the lease (named after the group) runs
the group, the others stand by and take over within ``lease_seconds`` when it stops or dies (at
once when it stops cleanly: it releases the lease). Handlers stay idempotent by event id: for a
moment after a handover two processes may handle the same batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from meshgate.events.base import EVERYTHING, Filter
from meshgate.events.envelope import Record
from meshgate.events.leases import Leases, holder_name
from meshgate.events.service import EventService

log = logging.getLogger("meshgate.events.groups")
BatchHandler = Callable[[list[Record]], Awaitable[object]]
RETRY_SECONDS = 1.0


class LeasedGroup:
    def __init__(
        self,
        events: EventService,
        leases: Leases,
        group: str,
        handler: BatchHandler,
        *,
        where: Filter = EVERYTHING,
        lease_seconds: float = 10.0,
    ):
        self.events = events
        self.leases = leases
        self.group = group
        self.handler = handler
        self.where = where
        self.lease_seconds = lease_seconds
        self.holder = holder_name()
        self._task: asyncio.Task[None] | None = None
        self._consumer: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        """Whether this process runs the group now."""
        return self._consumer is not None and not self._consumer.done()

    def start(self) -> None:
        self._task = asyncio.create_task(self._hold(), name=f"group-{self.group}")

    async def close(self) -> None:
        for task in (self._task, self._consumer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._consumer = None
        with contextlib.suppress(Exception):  # another process takes over at once
            await self.leases.release(self.group, self.holder)

    async def _hold(self) -> None:
        while True:
            try:
                held = await self.leases.acquire(self.group, self.holder, self.lease_seconds)
            except Exception:
                log.warning("could not renew the lease of %s", self.group)
                held = False
            if held and not self.running:
                self._consumer = asyncio.create_task(self._consume(), name=f"run-{self.group}")
            elif not held and self._consumer is not None:
                await self._stop_consumer()
            # Renewed well before it runs out.
            await asyncio.sleep(self.lease_seconds / 3)

    async def _stop_consumer(self) -> None:
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await consumer

    async def _consume(self) -> None:
        while True:
            try:
                await self.events.consume_records(self.group, self.handler, where=self.where)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("consumer group %s failed; resuming in a second", self.group)
                await asyncio.sleep(RETRY_SECONDS)
