"""Real receivers on loopback: an OTLP/HTTP trace collector and an alert webhook endpoint."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from tests.conftest import free_port


@dataclass
class Receiver:
    url: str
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0
    """Seconds the receiver takes before it answers."""
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def wait_for(self, ready: Callable[[], bool], within: float = 10.0) -> None:
        async with asyncio.timeout(within):
            while not ready():
                self.arrived.clear()
                await self.arrived.wait()


@dataclass
class Collector(Receiver):
    spans: list[Any] = field(default_factory=list)
    """Every span received, with ``.resource`` attributes merged in a dict beside it."""
    resources: list[dict[str, Any]] = field(default_factory=list)


async def _serve(app: web.Application) -> AsyncIterator[int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield port
    finally:
        await runner.cleanup()


@pytest.fixture
async def otlp_collector() -> AsyncIterator[Collector]:
    """Accepts POST /v1/traces (OTLP/HTTP protobuf) and parses every span for real."""
    collector = Collector(url="")

    async def traces(request: web.Request) -> web.Response:
        body = await request.read()
        parsed = ExportTraceServiceRequest()
        parsed.ParseFromString(body)
        for resource_spans in parsed.resource_spans:
            attrs = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            collector.resources.append(attrs)
            for scope_spans in resource_spans.scope_spans:
                collector.spans.extend(scope_spans.spans)
        collector.requests.append((dict(request.headers), body))
        collector.arrived.set()
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )

    app = web.Application()
    app.router.add_post("/v1/traces", traces)
    async for port in _serve(app):
        collector.url = f"http://127.0.0.1:{port}/v1/traces"
        yield collector


@pytest.fixture
async def webhook_receiver() -> AsyncIterator[Receiver]:
    """Records every POST /hook with its headers and raw body; answers ``receiver.status``."""
    receiver = Receiver(url="")

    async def hook(request: web.Request) -> web.Response:
        receiver.requests.append((dict(request.headers), await request.read()))
        receiver.arrived.set()
        await asyncio.sleep(receiver.delay)
        return web.Response(status=receiver.status)

    app = web.Application()
    app.router.add_post("/hook", hook)
    async for port in _serve(app):
        receiver.url = f"http://127.0.0.1:{port}/hook"
        yield receiver
