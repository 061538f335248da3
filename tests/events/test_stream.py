"""GET /v1/events/stream: server-sent events over a real HTTP connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson

from .conftest import LiveServer
from .test_routes import cloudevent, key_for


class SseReader:
    """Parses server-sent events (id, event, data) off one open response."""

    def __init__(self, response: httpx.Response):
        self.lines: AsyncIterator[str] = response.aiter_lines()

    async def take(self, count: int) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        current: dict[str, Any] = {}
        async for line in self.lines:
            if line.startswith(("id:", "event:", "data:")):
                name, _, value = line.partition(": ")
                current[name] = orjson.loads(value) if name == "data" else value
            elif line == "" and "data" in current:
                events.append(current)
                current = {}
                if len(events) == count:
                    return events
        raise AssertionError(f"stream ended after {len(events)} events")


async def wait_for(predicate: Any, seconds: float = 5) -> None:
    for _ in range(int(seconds / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met in time")


async def test_stream_sends_history_then_live_events_and_releases_on_disconnect(make_settings):
    async with LiveServer(make_settings()) as server, server.client() as http:
        await http.post("/v1/events", json=[cloudevent(1), cloudevent(2)])
        async with http.stream("GET", "/v1/events/stream", params={"after": 0}) as response:
            sse = SseReader(response)
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            history = await sse.take(2)
            assert [e["id"] for e in history] == ["1", "2"]
            assert history[0]["event"] == "shop.order.placed"
            assert history[1]["data"]["data"] == {"n": 2}
            assert server.events.open_streams == 1

            await http.post("/v1/events", json=cloudevent(3))
            [live] = await asyncio.wait_for(sse.take(1), 5)
            assert live["id"] == "3" and live["data"]["sequence"] == 3
        # The client hung up: the server stops tailing and frees the stream.
        await wait_for(lambda: server.events.open_streams == 0)
        assert not [t for t in asyncio.all_tasks() if t.get_name() == "events-sse"]


async def test_stream_resumes_after_last_event_id_and_filters(make_settings):
    async with LiveServer(make_settings()) as server, server.client() as http:
        await http.post("/v1/events", json=[cloudevent(n) for n in range(1, 5)])
        await http.post("/v1/events", json=cloudevent(9, type="shop.other"))
        headers = {"Last-Event-ID": "2"}
        async with http.stream("GET", "/v1/events/stream", headers=headers) as response:
            sse = SseReader(response)
            resumed = await sse.take(3)
        assert [e["id"] for e in resumed] == ["3", "4", "5"]
        params = {"after": 0, "type": "shop.other"}
        async with http.stream("GET", "/v1/events/stream", params=params) as response:
            sse = SseReader(response)
            [only] = await sse.take(1)
        assert only["data"]["data"] == {"n": 9}


async def test_stream_without_position_starts_live_and_shows_only_the_tenant(make_settings):
    async with LiveServer(make_settings()) as server, server.client() as http:
        await http.post("/v1/events", json=cloudevent(1))
        acme = await key_for(http, "acme", "events:read", "events:write")
        async with http.stream("GET", "/v1/events/stream", headers=acme) as response:
            sse = SseReader(response)
            await http.post("/v1/events", json=cloudevent(2))  # another tenant's
            await http.post("/v1/events", json=cloudevent(3), headers=acme)
            [event] = await asyncio.wait_for(sse.take(1), 5)
        assert event["data"]["data"] == {"n": 3}


async def test_bad_stream_requests_are_refused(make_settings):
    async with LiveServer(make_settings()) as server, server.client() as http:
        bad = await http.get("/v1/events/stream", headers={"Last-Event-ID": "abc"})
        assert bad.status_code == 422 and "last-event-id" in bad.text.lower()
        assert (await http.get("/v1/events/stream", params={"after": -5})).status_code == 422
        assert server.events.open_streams == 0
