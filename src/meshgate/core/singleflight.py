"""Concurrent loads of one key share one load.

The hot-path caches (prices, guardrail policies, budgets) refresh an entry when it is older
than a second. Without this, every request arriving while the refresh query runs misses too
and sends its own query: at 32 concurrent requests, up to 32 queries (and 32 hand-offs to the
database thread) per entry per second, all at once, which shows in the latency tail.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    def __init__(self) -> None:
        self._loads: dict[K, asyncio.Future[V]] = {}

    async def load(self, key: K, make: Callable[[], Awaitable[V]]) -> V:
        """``make()``'s result, or that of the load of ``key`` already running.

        The load runs as its own task: a caller that is cancelled (its client left) leaves it
        running for the others."""
        running = self._loads.get(key)
        if running is None:
            running = asyncio.ensure_future(make())
            self._loads[key] = running
            running.add_done_callback(functools.partial(self._done, key))
        return await asyncio.shield(running)

    def forget(self, key: K) -> None:
        """The entry changed: loads from now on start afresh rather than join a running one
        (which may have read the old row)."""
        self._loads.pop(key, None)

    def _done(self, key: K, future: asyncio.Future[V]) -> None:
        if self._loads.get(key) is future:
            del self._loads[key]
        if not future.cancelled():
            # Retrieved here, so a failure every caller left before is not reported as lost.
            with contextlib.suppress(Exception):
                future.exception()
