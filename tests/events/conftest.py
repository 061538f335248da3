"""An ``event_log`` fixture over every backend, the real servers for NATS and Redis."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest

from meshgate.events.backends import open_event_log
from meshgate.events.base import EventLog
from meshgate.events.envelope import Record, format_time, now

BACKENDS = ["sqlite", "nats", "redis"]


async def drop_nats_stream(url: str, namespace: str) -> None:
    """Remove the stream and offset bucket this test created (and only those)."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    for name in (f"{namespace}_events", f"KV_{namespace}_event_offsets"):
        with contextlib.suppress(Exception):
            await js.delete_stream(name)
    await nc.close()


def log_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'events.db'}"
    if backend == "nats":
        return request.getfixturevalue("nats_url")
    return request.getfixturevalue("redis_url")


@pytest.fixture(params=BACKENDS)
async def event_log(
    request: pytest.FixtureRequest, tmp_path: Path, namespace: str
) -> AsyncIterator[EventLog]:
    url = log_url(request.param, request, tmp_path)
    backend = open_event_log(url, data_dir=tmp_path, namespace=namespace, poll_interval=0.02)
    await backend.start()
    yield backend
    await backend.close()
    if request.param == "nats":
        await drop_nats_stream(url, namespace)


def record(n: int, *, tenant: str = "acme", type: str = "crm.synced", **kw: object) -> Record:
    values: dict[str, object] = {
        "tenant": tenant,
        "id": f"e-{n}",
        "source": "/test",
        "type": type,
        "time": format_time(now()),
        "data": {"n": n},
    }
    values.update(kw)
    return Record(**values)  # type: ignore[arg-type]
