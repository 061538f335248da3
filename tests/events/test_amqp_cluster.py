"""Two app instances on one PostgreSQL (and one log): one of them publishes to the exchange
(the lease of the consumer group events.amqp), each event once; when it stops, the other
takes over from the committed offset and nothing is lost."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AsyncExitStack

import httpx
import orjson
import pytest

from meshgate.config import Settings
from tests.conftest import app_client
from tests.events.test_amqp_publisher import (
    Broker,
    amqp_settings,
    broker,  # noqa: F401  (the fixture)
    integration_events,
    publisher_of,
    receive,
)


async def runner_of(nodes: list[httpx.AsyncClient]) -> httpx.AsyncClient:
    async with asyncio.timeout(30):
        while not any(publisher_of(n).running for n in nodes):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    running = [n for n in nodes if publisher_of(n).running]
    assert len(running) == 1, "two processes publish"
    return running[0]


@pytest.mark.timeout(120)
async def test_two_instances_publish_each_event_once_and_hand_over(
    make_settings: Callable[..., Settings],
    broker: Broker,  # noqa: F811
    postgres_url: str,
) -> None:
    settings = make_settings(
        database_url=postgres_url,
        key_pepper="cluster-pepper",
        **amqp_settings(broker.url, broker.exchange, types=["com.acme.*"]),
    )
    async with AsyncExitStack() as stop_first, AsyncExitStack() as stop_second:
        first = await stop_first.enter_async_context(app_client(settings))
        second = await stop_second.enter_async_context(app_client(settings))
        for i in range(0, 40, 10):  # appended through both, interleaved
            await integration_events(first if i % 20 else second, 10, start=i)
        messages = await receive(broker.queue, 40)
        holder = await runner_of([first, second])
        standby = second if holder is first else first
        assert publisher_of(holder).published == 40 and publisher_of(standby).published == 0
        assert [orjson.loads(m.body)["data"]["i"] for m in messages] == list(range(40))

        # The publisher stops (it gives the lease up); the other resumes from its offset.
        await (stop_first if holder is first else stop_second).aclose()
        await integration_events(standby, 10, start=40)
        assert await runner_of([standby]) is standby
        later = await receive(broker.queue, 10)
        assert [orjson.loads(m.body)["data"]["i"] for m in later] == list(range(40, 50))
        assert publisher_of(standby).published == 10
