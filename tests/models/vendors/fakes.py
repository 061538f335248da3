"""What every fake vendor server has in common: a real aiohttp server on loopback, run in a
background event loop, recording what it received and failing on demand."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, TypeVar

import orjson
from aiohttp import web

from tests.conftest import free_port


class FakeVendor:
    """Subclasses add their routes in :meth:`routes` and answer from the shared brain."""

    vendor = "vendor"

    def __init__(self, loop: asyncio.AbstractEventLoop, name: str):
        self.loop = loop
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.paths: list[str] = []
        self.fail_status: int | None = None
        self.lock = threading.Lock()
        asyncio.run_coroutine_threadsafe(self._start(), loop).result(10)

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def _start(self) -> None:
        app = web.Application()
        self.routes(app)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)

    def calls(self) -> int:
        with self.lock:
            return len(self.requests)

    async def record(self, request: web.Request) -> dict[str, Any]:
        raw = await request.read()
        body = orjson.loads(raw) if raw else {}
        with self.lock:
            self.requests.append(body)
            self.headers.append({k.lower(): v for k, v in request.headers.items()})
            self.paths.append(str(request.rel_url))
        return body

    @staticmethod
    def json(body: Any, status: int = 200, **headers: str) -> web.Response:
        return web.Response(
            body=orjson.dumps(body),
            status=status,
            content_type="application/json",
            headers=headers,
        )


F = TypeVar("F", bound=FakeVendor)


class FakeHost:
    """One event loop in a thread for every fake vendor of a test package."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.fakes: list[FakeVendor] = []

    def start(self, kind: type[F], name: str) -> F:
        fake = kind(self.loop, name)
        self.fakes.append(fake)
        return fake

    def close(self) -> None:
        for fake in self.fakes:
            fake.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
