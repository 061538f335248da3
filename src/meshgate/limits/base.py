"""The rate limiter port and its algorithm (GCRA, the generic cell rate algorithm).

A bucket allows ``limit`` units per ``period`` seconds, all of them at once if they come in a
burst, then one every ``period / limit`` seconds. Its whole state is one number, the
theoretical arrival time (TAT), so a backend stores one float per bucket and a check of
several buckets is atomic: either all of them admit the request and all are charged, or none
is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Bucket:
    key: str
    limit: int
    period: float = 60.0
    cost: int = 1


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_after: float
    retry_after: float

    def headers(self) -> dict[str, str]:
        headers = {
            "ratelimit-limit": str(self.limit),
            "ratelimit-remaining": str(self.remaining),
            "ratelimit-reset": str(math.ceil(self.reset_after)),
        }
        if not self.allowed:
            headers["retry-after"] = str(max(1, math.ceil(self.retry_after)))
        return headers


class Limiter(Protocol):
    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def ping(self) -> None: ...

    async def check(self, buckets: list[Bucket]) -> Decision:
        """Admit and charge every bucket, or refuse and charge none."""
        ...

    async def charge(self, bucket: Bucket) -> None:
        """Add a cost learnt after the fact (tokens a model used), even past the limit."""
        ...


ROUNDING = 1e-6
"""Seconds of float rounding forgiven: ``(now + period) - period`` can exceed ``now`` by an
ulp, which would refuse a full bucket's last (or a one-per-period key's first) request."""


def evaluate(tat: float, now: float, bucket: Bucket) -> tuple[bool, float, Decision]:
    """One bucket's verdict: (allowed, new TAT, decision). Pure, shared by every backend."""
    interval = bucket.period / bucket.limit
    tat = max(tat, now)
    new_tat = tat + bucket.cost * interval
    allow_at = new_tat - bucket.period
    if now + ROUNDING < allow_at:
        remaining = max(0, int((bucket.period - (tat - now)) / interval))
        return False, tat, Decision(False, bucket.limit, remaining, tat - now, allow_at - now)
    remaining = max(0, int((bucket.period - (new_tat - now)) / interval + 1e-9))
    return True, new_tat, Decision(True, bucket.limit, remaining, new_tat - now, 0.0)


def most_restrictive(decisions: list[Decision]) -> Decision:
    refused = [d for d in decisions if not d.allowed]
    if refused:
        return max(refused, key=lambda d: d.retry_after)
    return min(decisions, key=lambda d: d.remaining)
