"""A start-up that outlasts a SQL store that is down.

When PostgreSQL does not answer at start-up, the process does not exit: the lifespan lets the
listener serve, :class:`Startup` retries in the background (backoff capped at
:data:`MAX_DELAY`), ``/readyz`` names ``starting`` and ``sql`` as failing, and
:class:`StartupGate` answers every other request with a 503 and ``Retry-After``, at once. The
node serves as soon as an attempt succeeds, without a restart. Once started, the gate costs one
attribute check.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from meshgate.core.health import Readiness
from meshgate.errors import BackendUnavailable
from meshgate.gateway.problems import send_error
from meshgate.outage import reason

log = logging.getLogger("meshgate")

OPEN_PATHS = frozenset(
    {"/healthz", "/health", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready"}
)
"""Answered while the node starts: liveness, readiness (the V2 protocol's too) and the
operator's metrics; none of them needs the SQL store."""
FIRST_ATTEMPT_SECONDS = 2.0
"""How long the first attempt waits for a connection (libpq's connect timeout floor): a busy
database is waited for this long, a database that is down delays the listener no longer."""
FIRST_DELAY = 0.25
MAX_DELAY = 2.0
"""The longest pause between two attempts: the node serves at most this long (plus one
attempt) after the store's return."""


class Startup:
    """Whether the node is still waiting to start, and the retries that end the wait."""

    def __init__(self, give_up: Callable[[], None] | None = None) -> None:
        self.waiting = False
        """True from a failed first attempt until an attempt succeeds (the gate reads it)."""
        self.attempts = 0
        self._failure = "the SQL store is unavailable; retry later"
        """The last attempt's 503 detail (a role, never an address): kept as text, since an
        exception raised again and again would grow its traceback with every raise."""
        self._task: asyncio.Task[None] | None = None
        self._give_up = give_up or stop_the_process
        self.gave_up = False

    def failed(self, exc: BackendUnavailable, retry_in: float) -> None:
        self.attempts += 1
        self._failure = exc.detail
        log.warning(
            "start-up waits for the SQL store (attempt %d, next in %.2g s): %s",
            self.attempts,
            retry_in,
            reason(exc),
        )

    def unavailable(self) -> BackendUnavailable:
        """What a request gets while the node waits (names the role, never an address)."""
        return BackendUnavailable(f"the node is starting: {self._failure}")

    def wait(
        self,
        first: BackendUnavailable,
        readiness: Readiness,
        attempt: Callable[[], Awaitable[None]],
        then: Callable[[], Awaitable[None]],
    ) -> None:
        """The first attempt failed with ``first``: hold the gate and readiness, and retry
        ``attempt`` in the background until it succeeds, then run ``then`` (the rest of the
        start-up, which is not retried: the services it starts are not made to start twice)."""
        self.waiting = True
        self.failed(first, FIRST_DELAY)

        async def starting() -> None:
            raise BackendUnavailable("the node is starting: it waits for the SQL store")

        async def store() -> None:
            raise BackendUnavailable(self._failure)

        readiness.hold({"starting": starting, "sql": store})
        self._task = asyncio.create_task(self._retry(readiness, attempt, then), name="startup")

    async def _retry(
        self,
        readiness: Readiness,
        attempt: Callable[[], Awaitable[None]],
        then: Callable[[], Awaitable[None]],
    ) -> None:
        delay = FIRST_DELAY
        try:
            while True:
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_DELAY)
                try:
                    await attempt()
                    break
                except BackendUnavailable as exc:
                    self.failed(exc, delay)
            await then()
        except Exception:
            # Not the store being away: a failure a first attempt would have stopped the
            # process with (a schema it may not change), or the store failing the rest of the
            # start-up for longer than its patience. The services are not made to start twice:
            # the process stops (what started is closed), and its next start is a new one.
            log.exception("start-up failed while the node waited for the SQL store; it stops")
            self.gave_up = True
            self._give_up()
            return
        readiness.release()
        self.waiting = False
        log.info("started after %d attempts to reach the SQL store", self.attempts + 1)

    async def stop(self) -> None:
        """Shutdown: a start-up still retrying is cancelled (the lifespan closes the rest)."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._task = None


EXIT_GAVE_UP = 3
"""``meshgate serve``'s exit status then: uvicorn's own after a failed start-up."""
_gave_up: list[bool] = []


def stop_the_process() -> None:
    """A graceful stop, as on SIGTERM (the lifespan closes what started); ``meshgate serve``
    then exits with :data:`EXIT_GAVE_UP`, so that a supervisor restarts it."""
    _gave_up.append(True)
    os.kill(os.getpid(), signal.SIGTERM)


def process_gave_up() -> bool:
    return bool(_gave_up)


class StartupGate:
    """ASGI middleware: while the node waits to start, a 503 problem with ``Retry-After`` for
    every request but :data:`OPEN_PATHS`, answered before anything that needs the store."""

    def __init__(self, app: ASGIApp, startup: Startup):
        self.app = app
        self.startup = startup

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.startup.waiting or scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        await send_error(self.startup.unavailable(), scope, send)
