"""Event-loop lag and collector pauses are measured, so a tail that no request explains can be
traced to the process itself."""

from __future__ import annotations

import asyncio
import gc
import time

import httpx
from prometheus_client import CollectorRegistry

from meshgate.monitoring.runtime import RuntimeProbe


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, labels or None)
    return 0.0 if value is None else value


def hold_the_loop(seconds: float) -> None:
    """Work that never yields, as a long collection or a blocking call would."""
    time.sleep(seconds)


async def test_a_blocked_loop_is_recorded_as_lag() -> None:
    registry = CollectorRegistry()
    probe = RuntimeProbe(registry, interval=0.01)
    probe.start()
    try:
        await asyncio.sleep(0.05)
        hold_the_loop(0.2)
        await asyncio.sleep(0.05)
    finally:
        await probe.close()
    assert sample(registry, "meshgate_event_loop_lag_seconds_count") >= 3
    slow = sample(registry, "meshgate_event_loop_lag_seconds_count") - sample(
        registry, "meshgate_event_loop_lag_seconds_bucket", le="0.1"
    )
    assert slow >= 1, "the 200 ms stall must land above the 100 ms bucket"


async def test_every_collection_is_timed_by_generation() -> None:
    registry = CollectorRegistry()
    probe = RuntimeProbe(registry)
    probe.start()
    try:
        gc.collect(2)
        gc.collect(0)
    finally:
        await probe.close()
    assert sample(registry, "meshgate_gc_pause_seconds_count", generation="2") >= 1
    assert sample(registry, "meshgate_gc_pause_seconds_count", generation="0") >= 1
    before = sample(registry, "meshgate_gc_pause_seconds_count", generation="2")
    gc.collect(2)  # closed: no longer observed
    assert sample(registry, "meshgate_gc_pause_seconds_count", generation="2") == before


async def test_the_platform_exports_both(client: httpx.AsyncClient) -> None:
    await asyncio.sleep(0.2)
    gc.collect()
    text = (await client.get("/metrics")).text
    assert "meshgate_event_loop_lag_seconds_count" in text
    assert 'meshgate_gc_pause_seconds_count{generation="2"}' in text
