"""In-process limiter: exact within one process, not shared between processes."""

from __future__ import annotations

import time
from collections.abc import Callable

from meshgate.limits.base import ROUNDING, Bucket, Decision, evaluate, most_restrictive


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
        admitted = self._admit(buckets, now)
        if admitted is not None:
            return admitted
        verdicts = [evaluate(self._tat.get(b.key, 0.0), now, b) for b in buckets]
        if all(allowed for allowed, _, _ in verdicts):
            for bucket, (_, new_tat, _) in zip(buckets, verdicts, strict=True):
                self._tat[bucket.key] = new_tat
        return most_restrictive([d for _, _, d in verdicts])

    def _admit(self, buckets: list[Bucket], now: float) -> Decision | None:
        """The common case on the request path: every bucket admits. Same arithmetic as
        :func:`evaluate` and :func:`most_restrictive`, without a Decision per bucket; returns
        None when any bucket refuses, and the general path then builds the refusal."""
        tats = self._tat
        new_tats: list[float] = []
        chosen: tuple[int, int, float] | None = None  # (remaining, limit, new TAT)
        for b in buckets:
            interval = b.period / b.limit
            tat = tats.get(b.key, 0.0)
            if tat < now:
                tat = now
            new_tat = tat + b.cost * interval
            if now + ROUNDING < new_tat - b.period:
                return None
            new_tats.append(new_tat)
            remaining = max(0, int((b.period - (new_tat - now)) / interval + 1e-9))
            if chosen is None or remaining < chosen[0]:
                chosen = (remaining, b.limit, new_tat)
        for b, new_tat in zip(buckets, new_tats, strict=True):
            tats[b.key] = new_tat
        if chosen is None:
            return most_restrictive([])
        remaining, limit, new_tat = chosen
        return Decision(True, limit, remaining, new_tat - now, 0.0)

    async def charge(self, bucket: Bucket) -> None:
        now = self._clock()
        interval = bucket.period / bucket.limit
        self._tat[bucket.key] = max(self._tat.get(bucket.key, 0.0), now) + bucket.cost * interval
