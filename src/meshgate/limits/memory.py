"""In-process limiter: exact within one process, not shared between processes."""

from __future__ import annotations

import time
from collections.abc import Callable

from meshgate.limits.base import Bucket, Decision, evaluate, most_restrictive


class MemoryLimiter:
    def __init__(self, clock: Callable[[], float] | None = None):
        self._tat: dict[str, float] = {}
        self._clock = clock or time.monotonic

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        self._tat.clear()

    async def ping(self) -> None:
        pass

    async def check(self, buckets: list[Bucket]) -> Decision:
        now = self._clock()
        verdicts = [evaluate(self._tat.get(b.key, 0.0), now, b) for b in buckets]
        if all(allowed for allowed, _, _ in verdicts):
            for bucket, (_, new_tat, _) in zip(buckets, verdicts, strict=True):
                self._tat[bucket.key] = new_tat
        return most_restrictive([d for _, _, d in verdicts])

    async def charge(self, bucket: Bucket) -> None:
        now = self._clock()
        interval = bucket.period / bucket.limit
        self._tat[bucket.key] = max(self._tat.get(bucket.key, 0.0), now) + bucket.cost * interval
