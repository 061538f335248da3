"""A key allowed one request a minute gets it whatever the clock reads: float rounding of
``(now + period) - period`` must not refuse the first request."""

from __future__ import annotations

from meshgate.limits.base import Bucket, evaluate
from meshgate.limits.memory import MemoryLimiter


async def test_one_request_a_period_is_admitted_at_any_clock_reading() -> None:
    refused = []
    for i in range(2000):
        now = 1000 + i * 0.0137
        limiter = MemoryLimiter(clock=lambda now=now: now)
        bucket = Bucket(f"k{i}", 1)
        first, second = await limiter.check([bucket]), await limiter.check([bucket])
        if not first.allowed or second.allowed:
            refused.append(now)
        # The general path (used by the shared limiter's arithmetic) agrees.
        allowed, _, _ = evaluate(0.0, now, bucket)
        if not allowed:
            refused.append(now)
    assert refused == []
