"""The asyncio client: the live event stream as an async iterator, pages, inference."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from meshgate.client import AsyncClient, NotFoundError
from tests.conftest import ADMIN_KEY, Server

# A real server starts first; the shared test machine can be slow to start one.
pytestmark = pytest.mark.timeout(600)


def event(n: int, type: str = "sdk.live") -> dict[str, Any]:
    return {"specversion": "1.0", "id": f"{type}-{n}", "source": "/sdk", "type": type, "data": n}


async def test_the_live_stream_yields_new_events_in_order(server: Server) -> None:
    async with AsyncClient(server.url, ADMIN_KEY) as mesh:
        start = await mesh.events.publish(event(0))
        stream = mesh.events.stream(type="sdk.live", after=start.sequence)
        received: list[int] = []

        async def take(n: int) -> None:
            async for e in stream:
                received.append(e.data)
                if len(received) == n:
                    return

        reading = asyncio.ensure_future(take(3))
        await mesh.events.publish(event(99, type="sdk.other"))  # filtered out
        for n in (1, 2, 3):
            await mesh.events.publish(event(n))
        await asyncio.wait_for(reading, 20)
        await stream.aclose()
        assert received == [1, 2, 3]


async def test_async_pages_inference_and_errors(server: Server) -> None:
    async with AsyncClient(server.url, ADMIN_KEY) as mesh:
        await mesh.events.publish_batch([event(n, "sdk.paged") for n in range(7)])
        seen = [e.data async for e in mesh.events.iter(type="sdk.paged", page_size=3)]
        assert seen == list(range(7))
        models = await mesh.models.list()
        assert "iris" in {x.name for x in models}
        result = await mesh.inference.infer(
            "iris",
            [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [5.1, 3.5, 1.4, 0.2]}],
            version="1",
        )
        assert result.model_version == "1" and result.outputs[0].data == [0]
        audited = [r async for r in mesh.audit.iter(page_size=2)]
        assert audited and (await mesh.audit.verify()).records >= len(audited)
        try:
            await mesh.context.get_session("nope")
        except NotFoundError as error:
            assert error.status == 404 and error.type.endswith("not-found")
        else:
            raise AssertionError("an unknown session is a 404")
