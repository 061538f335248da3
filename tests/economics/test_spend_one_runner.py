"""The spend ledger is counted by one process of the cluster at a time: two apps on one
PostgreSQL share the log, one holds the consumer group's lease and counts; when it stops, the
other takes over, and every call is counted exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest

from meshgate.app import Services
from meshgate.config import Settings
from tests.conftest import app_client
from tests.economics.conftest import as_key, declarations, new_key
from tests.models.fake_openai import FakeOpenAI

PRICE = {"input_per_mtok": 1.0, "output_per_mtok": 2.0, "currency": "EUR"}
ONE_CALL = (7 * 1.0 + 5 * 2.0) / 1_000_000  # the fake reports 7 prompt, 5 completion tokens


def services_of(client: httpx.AsyncClient) -> Services:
    services: Services = client.app.state.services  # type: ignore[attr-defined]
    return services


def input_tokens_counted(client: httpx.AsyncClient) -> float:
    """What this process's Prometheus counter added for model alpha."""
    labels = {"tenant": "default", "model": "alpha", "kind": "input"}
    registry = services_of(client).metrics.registry
    return registry.get_sample_value("meshgate_spend_tokens_total", labels) or 0.0


async def calls(client: httpx.AsyncClient, key: str, n: int) -> None:
    body = {"model": "alpha", "messages": [{"role": "user", "content": "hi"}]}
    async with as_key(client, key) as caller:
        for _ in range(n):
            response = await caller.post("/v1/chat/completions", json=body)
            assert response.status_code == 200, response.text


async def spend_of(client: httpx.AsyncClient, key_id: str, want: int) -> dict[str, Any]:
    """The key's spend row once ``want`` requests are counted (and a moment to see no more)."""
    row: dict[str, Any] = {}
    async with asyncio.timeout(30):
        while row.get("requests", 0) < want:
            await asyncio.sleep(0.05)
            groups = (await client.get("/v1/spend", params={"group_by": "key"})).json()["groups"]
            row = next((g for g in groups if g["key"] == key_id), {})
    return row


async def holder_of(nodes: list[httpx.AsyncClient]) -> httpx.AsyncClient:
    async with asyncio.timeout(30):
        while not any(services_of(n).spend.running for n in nodes):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    running = [n for n in nodes if services_of(n).spend.running]
    assert len(running) == 1, "two processes count the spend"
    return running[0]


@pytest.mark.timeout(120)
async def test_one_process_counts_and_the_other_takes_over_when_it_stops(
    make_settings: Callable[..., Settings],
    upstream: FakeOpenAI,
    postgres_url: str,
) -> None:
    settings = make_settings(
        models=declarations(upstream), database_url=postgres_url, key_pepper="cluster-pepper"
    )
    async with AsyncExitStack() as stop_first, AsyncExitStack() as stop_second:
        first = await stop_first.enter_async_context(app_client(settings))
        second = await stop_second.enter_async_context(app_client(settings))
        put = await first.put("/v1/registry/models/alpha/versions/1/price", json=PRICE)
        assert put.status_code == 200, put.text
        key_id, key = await new_key(first)
        await asyncio.sleep(1.1)  # prices are read again after a second
        await asyncio.gather(calls(first, key, 6), calls(second, key, 6))
        holder = await holder_of([first, second])
        row = await spend_of(first, key_id, 12)
        assert row["requests"] == 12 and row["amount"] == pytest.approx(12 * ONE_CALL)
        standby = second if holder is first else first
        assert input_tokens_counted(holder) == 12 * 7
        assert input_tokens_counted(standby) == 0

        # The holder stops (it releases the lease); calls go on through the other.
        await (stop_first if holder is first else stop_second).aclose()
        await calls(standby, key, 5)
        assert await holder_of([standby]) is standby
        await spend_of(standby, key_id, 17)
        await asyncio.sleep(0.3)  # a second count of anything would show by now
        row = await spend_of(standby, key_id, 17)
        assert row["requests"] == 17 and row["amount"] == pytest.approx(17 * ONE_CALL)
        assert (row["input_tokens"], row["output_tokens"]) == (17 * 7, 17 * 5)
        assert input_tokens_counted(standby) == 5 * 7  # only what it added itself
