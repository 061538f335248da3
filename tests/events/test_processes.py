"""Two ``meshgate serve`` processes on PostgreSQL and Redis behave as one event backbone."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import psycopg
import pytest

from tests.conftest import ADMIN_KEY

from .test_routes import cloudevent
from .test_stream import SseReader, wait_for
from .test_webhooks import SECRET


def lease_holder_pid(postgres_url: str) -> int:
    with psycopg.connect(postgres_url) as conn:
        row = conn.execute("SELECT holder FROM event_subscription_leases").fetchone()
    assert row is not None
    return int(row[0].split(":")[1])


@pytest.mark.e2e
async def test_two_processes_share_the_log_and_deliver_each_webhook_event_once(
    start_server, postgres_url, redis_url, namespace, receiver
):
    env = {
        "MESHGATE_DATABASE_URL": postgres_url,
        "MESHGATE_EVENTS__URL": redis_url,
        "MESHGATE_NAMESPACE": namespace,
        "MESHGATE_EVENTS__WEBHOOK_BACKOFF_SECONDS": "0.01",
    }
    first, second = start_server(env=env), start_server(env=env)
    recv, base = receiver
    auth = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with (
        httpx.AsyncClient(base_url=first.url, headers=auth, timeout=10) as a,
        httpx.AsyncClient(base_url=second.url, headers=auth, timeout=10) as b,
    ):
        created = await a.post("/v1/subscriptions", json={"url": f"{base}/ok", "secret": SECRET})
        assert created.status_code == 201, created.text
        # Both processes see the subscription and the same log.
        await asyncio.sleep(2.5)
        assert [s["id"] for s in (await b.get("/v1/subscriptions")).json()["subscriptions"]] == [
            created.json()["id"]
        ]
        for n in range(20):
            response = await (a if n % 2 else b).post("/v1/events", json=cloudevent(n))
            assert response.status_code == 201
        listed = (await b.get("/v1/events", params={"limit": 100})).json()["events"]
        assert [e["sequence"] for e in listed] == list(range(1, 21))

        # A live stream on one process sees what is published through the other.
        async with b.stream("GET", "/v1/events/stream") as response:
            sse = SseReader(response)
            await a.post("/v1/events", json=cloudevent(100))
            [live] = await asyncio.wait_for(sse.take(1), 10)
        assert live["data"]["data"] == {"n": 100} and live["id"] == "21"

        sent = [f"order-{n}" for n in [*range(20), 100]]
        await wait_for(lambda: len(recv.ids("ok")) >= 21, 10)
        await asyncio.sleep(1.0)
        assert Counter(recv.ids("ok")) == Counter(sent)

        # The process holding the delivery stops; the other one carries on from the offset.
        holder = lease_holder_pid(postgres_url)
        assert holder in (first.proc.pid, second.proc.pid)
        stopped, other = (first, b) if holder == first.proc.pid else (second, a)
        stopped.stop()
        b = other
        for n in range(20, 25):
            await b.post("/v1/events", json=cloudevent(n))
        await wait_for(lambda: len(recv.ids("ok")) >= 26, 15)
        await asyncio.sleep(1.0)
        assert Counter(recv.ids("ok")) == Counter(sent + [f"order-{n}" for n in range(20, 25)])
