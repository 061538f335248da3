"""A rolling window of request outcomes for the SLO report, kept in memory.

Requests are counted in buckets of ``bucket_seconds``; each bucket keeps totals and a sparse
histogram of latencies on log-spaced bins (5% wide), so a day of traffic takes a few MB and a
p95 is read at most 5% high. Observing a request is a few dict operations.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MIN_LATENCY = 0.0005
GROWTH = 1.05
LOG_GROWTH = math.log(GROWTH)
UNAVAILABLE = frozenset({500, 503})
"""Statuses that mean the platform itself failed (an upstream's 502/504 is an error, not this)."""


def latency_bin(seconds: float) -> int:
    if seconds <= MIN_LATENCY:
        return 0
    return int(math.log(seconds / MIN_LATENCY) / LOG_GROWTH) + 1


def bin_upper(index: int) -> float:
    return MIN_LATENCY * GROWTH**index


@dataclass(slots=True)
class Bucket:
    start: int
    total: int = 0
    failed: int = 0
    unavailable: int = 0
    latency: dict[int, int] = field(default_factory=dict)


class RequestWindow:
    def __init__(
        self,
        *,
        retention_seconds: int = 86400,
        bucket_seconds: int = 10,
        clock: Callable[[], float] = time.time,
    ):
        self.bucket_seconds = bucket_seconds
        self.retention_seconds = retention_seconds
        self.clock = clock
        self._buckets: deque[Bucket] = deque()

    def observe(self, status: int, seconds: float) -> None:
        start = int(self.clock()) // self.bucket_seconds * self.bucket_seconds
        buckets = self._buckets
        if not buckets or buckets[-1].start != start:
            # Only seconds with traffic have a bucket: forget by age, not by count.
            while buckets and buckets[0].start <= start - self.retention_seconds:
                buckets.popleft()
            buckets.append(Bucket(start))
        bucket = buckets[-1]
        bucket.total += 1
        if status >= 500:
            bucket.failed += 1
            if status in UNAVAILABLE:
                bucket.unavailable += 1
            return
        index = latency_bin(seconds)
        bucket.latency[index] = bucket.latency.get(index, 0) + 1

    def summary(self, window_seconds: int) -> dict[str, Any]:
        """Counts and the p95 (of requests that did not fail) over the last ``window_seconds``."""
        since = self.clock() - min(window_seconds, self.retention_seconds)
        total = failed = unavailable = 0
        bins: dict[int, int] = {}
        for bucket in reversed(self._buckets):
            if bucket.start + self.bucket_seconds <= since:
                break
            total += bucket.total
            failed += bucket.failed
            unavailable += bucket.unavailable
            for index, count in bucket.latency.items():
                bins[index] = bins.get(index, 0) + count
        return {
            "requests": total,
            "failed": failed,
            "unavailable": unavailable,
            "p95_seconds": percentile(bins, 0.95),
        }


def percentile(bins: dict[int, int], q: float) -> float | None:
    """Upper edge of the bin holding the q-quantile: never under-reports latency."""
    count = sum(bins.values())
    if count == 0:
        return None
    rank = math.ceil(q * count)
    seen = 0
    for index in sorted(bins):
        seen += bins[index]
        if seen >= rank:
            return bin_upper(index)
    return bin_upper(max(bins))


def slo_report(summary: dict[str, Any], *, window_seconds: int, targets: Any) -> dict[str, Any]:
    """The report of GET /v1/slo: each indicator beside its target and whether it is met."""
    total = summary["requests"]
    availability = 1.0 if total == 0 else 1 - summary["unavailable"] / total
    error_rate = 0.0 if total == 0 else summary["failed"] / total
    p95 = summary["p95_seconds"]
    p95_ms = None if p95 is None else round(p95 * 1000, 3)
    allowed_errors = targets.error_rate * total
    budget = None
    if total:
        budget = 1.0 if allowed_errors == 0 and summary["failed"] == 0 else 0.0
        if allowed_errors > 0:
            budget = max(0.0, 1 - summary["failed"] / allowed_errors)
    return {
        "window_seconds": window_seconds,
        "requests": total,
        "availability": {
            "value": availability,
            "target": targets.availability,
            "met": availability >= targets.availability,
        },
        "error_rate": {
            "value": error_rate,
            "target": targets.error_rate,
            "met": error_rate <= targets.error_rate,
        },
        "p95_latency_ms": {
            "value": p95_ms,
            "target": targets.p95_latency_ms,
            "met": p95_ms is None or p95_ms <= targets.p95_latency_ms,
        },
        "error_budget_remaining": budget,
    }
