"""A shared limiter that degrades to a per-process one while its backend is away.

Rate limiting guards every authenticated request, so a Redis outage must not turn into a
503 on routes that need nothing else: while the shared limiter fails, each process enforces
the limits alone (per process instead of global, still bounded), ``/readyz`` names the
limiter, and the shared one is tried again after ``retry_after`` seconds. During that pause
no request waits on the dead backend.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from meshgate.errors import BackendUnavailable
from meshgate.limits.base import Bucket, Decision, Limiter
from meshgate.limits.memory import MemoryLimiter

log = logging.getLogger("meshgate.limits")


class FallbackLimiter:
    def __init__(
        self,
        shared: Limiter,
        *,
        retry_after: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.shared = shared
        self.local = MemoryLimiter()
        self.retry_after = retry_after
        self._clock = clock
        self._down_until = 0.0

    async def start(self) -> None:
        await self.shared.start()

    async def close(self) -> None:
        await self.shared.close()
        await self.local.close()

    async def ping(self) -> None:
        await self.shared.ping()

    def _use_shared(self) -> bool:
        return self._clock() >= self._down_until

    def _failed(self, exc: BackendUnavailable) -> None:
        if self._down_until == 0.0:
            log.warning("shared rate limiter unavailable; limits are per process until it returns")
        self._down_until = self._clock() + self.retry_after

    async def check(self, buckets: list[Bucket]) -> Decision:
        if self._use_shared():
            try:
                decision = await self.shared.check(buckets)
            except BackendUnavailable as exc:
                self._failed(exc)
            else:
                if self._down_until:
                    log.warning("shared rate limiter is back")
                    self._down_until = 0.0
                return decision
        return await self.local.check(buckets)

    async def charge(self, bucket: Bucket) -> None:
        if self._use_shared():
            try:
                await self.shared.charge(bucket)
                return
            except BackendUnavailable as exc:
                self._failed(exc)
        await self.local.charge(bucket)
