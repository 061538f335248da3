"""Each move of this process's circuit breakers, appended as a ``meshgate.breaker.*`` event.

A breaker lives in the process that calls the upstream, so every node has its own per model
version. Monitoring folds every node's reports from the log into one view per version and
evaluates the breaker alert there, once per cluster (``meshgate.monitoring.breakers``).

Reports go out one after another, in the order the breakers moved: the fold takes a node's
last report as its breaker's state, so a ``closed`` overtaking the ``half_open`` before it
would leave the breaker looking open. A report the log refuses (it is down) is logged and
dropped: an ``open`` lost raises no alert, and an ``open`` whose ``closed`` is lost lapses
after the breaker's reset window. Nothing here delays a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime

from meshgate.events.catalogue import BREAKER_EVENTS, BreakerState, BreakerTransition
from meshgate.events.ports import EventPublisher
from meshgate.models.resilience import State

log = logging.getLogger("meshgate.models.breaker_reports")
PENDING_LIMIT = 1000
"""Reports waiting for the log; past this the oldest are dropped (their breakers moved since)."""
CLOSE_SECONDS = 2.0
"""How long a stopping process waits for its last reports."""
STATES: dict[State, BreakerState] = {
    State.OPEN: "open",
    State.HALF_OPEN: "half_open",
    State.CLOSED: "closed",
}


class BreakerReports:
    def __init__(
        self, events: EventPublisher, node: str, *, clock: Callable[[], float] = time.time
    ):
        self.events = events
        self.node = node
        self.clock = clock
        self._pending: deque[BreakerTransition] = deque(maxlen=PENDING_LIMIT)
        self._task: asyncio.Task[None] | None = None

    def moved(
        self,
        tenant: str,
        model: str,
        version: str,
        state: State,
        reset_seconds: float,
        *,
        stopped: bool = False,
    ) -> None:
        """Queue the report of one move (called by the breaker, inside the request)."""
        at = datetime.fromtimestamp(self.clock(), UTC).isoformat(timespec="milliseconds")
        extra = {"stopped": True} if stopped else {}
        self._pending.append(
            BreakerTransition(
                tenant=tenant,
                model=model,
                version=version,
                state=STATES[state],
                node=self.node,
                at=at.replace("+00:00", "Z"),
                reset_seconds=reset_seconds,
                **extra,
            )
        )
        # One sender at a time keeps the order; it ends as soon as nothing is pending.
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(
                self._send(), name="breaker-reports"
            )

    async def _send(self) -> None:
        while self._pending:
            report = self._pending.popleft()
            type_ = BREAKER_EVENTS[report.state]
            try:
                await self.events.publish(
                    type_.name,
                    tenant=report.tenant,
                    subject=f"{report.model}/{report.version}",
                    data=type_.data(report),
                )
            except Exception:
                log.warning(
                    "could not report the breaker of %s %s as %s; dropped",
                    report.model,
                    report.version,
                    report.state,
                    exc_info=True,
                )

    async def drain(self) -> None:
        """Wait until every queued report was sent (or dropped)."""
        while self._task is not None and not self._task.done():
            await asyncio.gather(self._task, return_exceptions=True)

    async def close(self) -> None:
        task = self._task
        if task is None or task.done():
            return
        # A clean stop sends what is queued, but never waits long on a log that is down.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_SECONDS):
                await asyncio.shield(task)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
