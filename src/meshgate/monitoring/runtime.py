"""The process itself as a source of latency: event-loop lag and garbage-collector pauses.

Both stall every request in flight at once, so they show up as a tail that no single
request explains. The loop probe wakes every ``interval`` seconds and records how late it
woke; the collector probe times each collection through ``gc.callbacks``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
from typing import Any

from prometheus_client import CollectorRegistry, Histogram

PAUSE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1)


class RuntimeProbe:
    def __init__(self, registry: CollectorRegistry, *, interval: float = 0.05) -> None:
        self.interval = interval
        self.loop_lag = Histogram(
            "meshgate_event_loop_lag_seconds",
            "How late the event loop ran a timer: time no request could make progress.",
            buckets=PAUSE_BUCKETS,
            registry=registry,
        )
        self.gc_pause = Histogram(
            "meshgate_gc_pause_seconds",
            "Duration of each garbage collection, per generation.",
            ["generation"],
            buckets=PAUSE_BUCKETS,
            registry=registry,
        )
        self._gc_children = [self.gc_pause.labels(str(g)) for g in range(3)]
        self._gc_started = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        gc.callbacks.append(self._on_gc)
        self._task = asyncio.get_running_loop().create_task(self._watch(), name="loop-lag")

    async def close(self) -> None:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._on_gc)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _watch(self) -> None:
        observe = self.loop_lag.observe
        while True:
            expected = time.perf_counter() + self.interval
            await asyncio.sleep(self.interval)
            observe(max(0.0, time.perf_counter() - expected))

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self._gc_started:
            self._gc_children[info["generation"]].observe(time.perf_counter() - self._gc_started)
            self._gc_started = 0.0
