"""An ``event_log`` fixture over every backend, the real servers for NATS and Redis."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import nats
import orjson
import pytest
from aiohttp import web

from meshgate.config import Settings
from meshgate.events.backends import open_event_log
from meshgate.events.base import EventLog
from meshgate.events.envelope import Record, format_time, now
from meshgate.events.service import EventService
from tests.conftest import ADMIN_KEY, free_port, unavailable

RABBITMQ_STREAM_PORT = 5552
BACKENDS = ["sqlite", "nats", "redis", "rabbitmq"]


async def drop_nats_stream(url: str, namespace: str) -> None:
    """Remove the stream and offset bucket this test created (and only those)."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    for name in (f"{namespace}_events", f"KV_{namespace}_event_offsets"):
        with contextlib.suppress(Exception):
            await js.delete_stream(name)
    await nc.close()


async def drop_rabbitmq_stream(url: str, namespace: str) -> None:
    """Remove the stream this test created (and only that one)."""
    from rstream import Producer

    producer = Producer("127.0.0.1", RABBITMQ_STREAM_PORT, username="guest", password="guest")
    async with producer:
        await producer.delete_stream(f"{namespace}_events", missing_ok=True)


@pytest.fixture
def rabbitmq_stream_url() -> str:
    try:
        socket.create_connection(("127.0.0.1", RABBITMQ_STREAM_PORT), timeout=3).close()
    except OSError as exc:
        unavailable("RabbitMQ Streams (plugin rabbitmq_stream)", exc)
    return f"rabbitmq-stream://guest:guest@127.0.0.1:{RABBITMQ_STREAM_PORT}/"


def log_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'events.db'}"
    if backend == "nats":
        return request.getfixturevalue("nats_url")
    if backend == "rabbitmq":
        return request.getfixturevalue("rabbitmq_stream_url")
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
    if request.param == "rabbitmq":
        await drop_rabbitmq_stream(url, namespace)


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


class LiveServer:
    """The whole app served by uvicorn on loopback inside the test's event loop.

    A real HTTP server and real clients, while the test can still look at the service.
    """

    def __init__(self, settings: Settings):
        import uvicorn

        from meshgate.app import create_app

        self.app = create_app(settings)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, lifespan="on", log_level="warning"
        )
        self.server = uvicorn.Server(config)

    async def __aenter__(self) -> LiveServer:
        self._task = asyncio.create_task(self.server.serve())
        for _ in range(500):
            if self.server.started:
                return self
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.01)
        raise RuntimeError("server did not start")

    async def __aexit__(self, *exc: object) -> None:
        self.server.should_exit = True
        await self._task

    @property
    def events(self) -> EventService:
        service = self.app.state.services.events
        assert service is not None
        return service

    def client(self, key: str = ADMIN_KEY) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=10
        )


class Receiver:
    """Endpoints: /ok, /flaky (fails twice per event), /dead (always 500), /slow (hangs)."""

    def __init__(self) -> None:
        self.received: dict[str, list[dict[str, Any]]] = {}
        self.attempts: dict[tuple[str, str], int] = {}
        app = web.Application()
        app.router.add_post("/{name}", self.handle)
        self.runner = web.AppRunner(app)

    async def handle(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = await request.read()
        event_id = request.headers["Meshgate-Webhook-Id"]
        key = (name, event_id)
        self.attempts[key] = self.attempts.get(key, 0) + 1
        if name == "dead" or (name == "flaky" and self.attempts[key] <= 2):
            return web.Response(status=500)
        if name == "slow":
            await asyncio.sleep(1)
        self.received.setdefault(name, []).append(
            {"body": body, "headers": dict(request.headers), "event": orjson.loads(body)}
        )
        return web.Response(status=204)

    def ids(self, name: str) -> list[str]:
        return [d["event"]["id"] for d in self.received.get(name, [])]


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    recv = Receiver()
    await recv.runner.setup()
    site = web.TCPSite(recv.runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield recv, f"http://127.0.0.1:{port}"
    await recv.runner.cleanup()
