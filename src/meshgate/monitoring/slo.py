"""A rolling window of request outcomes for the SLO report.

Each process counts its own requests in memory, per tenant, in buckets of ``bucket_seconds``;
``monitoring.slo_store`` writes them to the SQL store, where the report sums every process's
buckets. Each bucket keeps totals and a sparse
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

    def add(self, other: Bucket) -> None:
        self.total += other.total
        self.failed += other.failed
        self.unavailable += other.unavailable
        for index, count in other.latency.items():
            self.latency[index] = self.latency.get(index, 0) + count


@dataclass(slots=True)
class Slot:
    """One bucket's time: a bucket per tenant that had traffic then."""

    start: int
    tenants: dict[str, Bucket] = field(default_factory=dict)


class RequestWindow:
    """This process's requests, by tenant ("" when the caller was not known) and time."""

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
        self._slots: deque[Slot] = deque()
        self._dirty: set[tuple[str, int]] = set()

    def observe(self, status: int, seconds: float, tenant: str = "") -> None:
        start = int(self.clock()) // self.bucket_seconds * self.bucket_seconds
        slots = self._slots
        if not slots or slots[-1].start != start:
            # Only seconds with traffic have a bucket: forget by age, not by count.
            while slots and slots[0].start <= start - self.retention_seconds:
                slots.popleft()
            slots.append(Slot(start))
        bucket = slots[-1].tenants.get(tenant)
        if bucket is None:
            bucket = slots[-1].tenants[tenant] = Bucket(start)
        self._dirty.add((tenant, start))
        bucket.total += 1
        if status >= 500:
            bucket.failed += 1
            if status in UNAVAILABLE:
                bucket.unavailable += 1
            return
        index = latency_bin(seconds)
        bucket.latency[index] = bucket.latency.get(index, 0) + 1

    def take_changed(self) -> list[tuple[str, Bucket]]:
        """(tenant, a copy of its bucket) of every bucket changed since the last call."""
        changed, self._dirty = self._dirty, set()
        earliest = min((start for _, start in changed), default=0)
        slots: dict[int, Slot] = {}
        for slot in reversed(self._slots):  # changes are recent: read from the newest back
            if slot.start < earliest:
                break
            slots[slot.start] = slot
        out: list[tuple[str, Bucket]] = []
        for tenant, start in changed:
            found = slots.get(start)
            bucket = found.tenants.get(tenant) if found is not None else None
            if bucket is not None:
                copy = Bucket(start)
                copy.add(bucket)
                out.append((tenant, copy))
        return out

    def mark_changed(self, items: list[tuple[str, Bucket]]) -> None:
        """Put back what could not be written, so the next flush writes it."""
        self._dirty.update((tenant, bucket.start) for tenant, bucket in items)

    def since(self, window_seconds: int) -> float:
        return self.clock() - min(window_seconds, self.retention_seconds)

    def summary(self, window_seconds: int, tenant: str | None = None) -> dict[str, Any]:
        """Counts and the p95 (of requests that did not fail) over the last ``window_seconds``,
        of one tenant or (None) of every caller."""
        since = self.since(window_seconds)
        buckets = []
        for slot in reversed(self._slots):
            if slot.start + self.bucket_seconds <= since:
                break
            buckets += [b for t, b in slot.tenants.items() if tenant is None or t == tenant]
        return summarize(buckets)


def summarize(buckets: list[Bucket]) -> dict[str, Any]:
    total = Bucket(0)
    for bucket in buckets:
        total.add(bucket)
    return {
        "requests": total.total,
        "failed": total.failed,
        "unavailable": total.unavailable,
        "p95_seconds": percentile(total.latency, 0.95),
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
