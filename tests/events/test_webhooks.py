"""Webhook subscriptions delivering to a real HTTP receiver on loopback."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from typing import Any

import pytest

from meshgate.events.webhooks import backoff

from .test_routes import cloudevent, key_for
from .test_stream import wait_for

SECRET = "s3cret-" + "k" * 20
FAST_RETRIES = {
    "webhook_backoff_seconds": 0.01,
    "webhook_backoff_max_seconds": 0.05,
    "webhook_max_attempts": 3,
    "webhook_timeout_seconds": 0.5,
}


@pytest.fixture
def settings(make_settings):  # type: ignore[no-untyped-def]
    return make_settings(events=FAST_RETRIES)


async def subscribe(client: Any, url: str, types: list[str] | None = None, **kw: Any) -> str:
    body = {"url": url, "secret": SECRET, **({"types": types} if types else {})}
    response = await client.post("/v1/subscriptions", json=body, **kw)
    assert response.status_code == 201, response.text
    return response.json()["id"]


async def test_deliveries_are_signed_and_only_the_wanted_types(client, receiver, caplog):
    caplog.set_level(logging.DEBUG)
    recv, base = receiver
    await client.post("/v1/events", json=cloudevent(0))  # before the subscription: not sent
    await subscribe(client, f"{base}/ok", ["shop.order.*"])
    await client.post("/v1/events", json=[cloudevent(1), cloudevent(2, type="crm.lead")])
    await client.post("/v1/events", json=cloudevent(3))
    await wait_for(lambda: len(recv.ids("ok")) == 2)
    await asyncio.sleep(0.1)
    assert recv.ids("ok") == ["order-1", "order-3"]
    for delivery in recv.received["ok"]:
        headers = delivery["headers"]
        assert headers["Content-Type"] == "application/cloudevents+json"
        timestamp = headers["Meshgate-Webhook-Timestamp"]
        expected = hmac.new(
            SECRET.encode(), f"{timestamp}.".encode() + delivery["body"], hashlib.sha256
        ).hexdigest()
        assert headers["Meshgate-Webhook-Signature"] == f"v1={expected}"
    listed = (await client.get("/v1/subscriptions")).text
    assert SECRET not in listed and SECRET not in caplog.text


async def test_retries_then_dead_letters_without_slowing_other_subscribers(client, receiver):
    recv, base = receiver
    ok = await subscribe(client, f"{base}/ok")
    flaky = await subscribe(client, f"{base}/flaky")
    dead = await subscribe(client, f"{base}/dead")
    await subscribe(client, f"{base}/slow")
    started = asyncio.get_running_loop().time()
    posted = await client.post("/v1/events", json=[cloudevent(n) for n in range(3)])
    assert posted.status_code == 201
    # Publishing never waits for any subscriber.
    assert asyncio.get_running_loop().time() - started < 0.3
    await wait_for(lambda: len(recv.ids("ok")) == 3, 2)
    # The slow receiver holds each attempt 0.5 s; the others never waited for it.
    assert asyncio.get_running_loop().time() - started < 1.0
    assert recv.ids("slow") == []
    await wait_for(lambda: len(recv.ids("flaky")) == 3)
    assert recv.ids("flaky") == ["order-0", "order-1", "order-2"]
    assert {recv.attempts[("flaky", i)] for i in recv.ids("flaky")} == {3}

    async def dead_letters(sub: str) -> list[dict[str, Any]]:
        response = await client.get(f"/v1/subscriptions/{sub}/dead-letters")
        assert response.status_code == 200
        return response.json()["dead_letters"]

    for _ in range(200):
        if len(await dead_letters(dead)) == 3:
            break
        await asyncio.sleep(0.02)
    letters = await dead_letters(dead)
    assert [d["event"]["id"] for d in letters] == ["order-0", "order-1", "order-2"]
    assert {d["attempts"] for d in letters} == {3} and letters[0]["last_error"] == "HTTP 500"
    assert await dead_letters(ok) == [] and await dead_letters(flaky) == []


async def test_delete_stops_deliveries_and_replay_sends_again(client, receiver):
    recv, base = receiver
    sub = await subscribe(client, f"{base}/ok")
    first = (await client.post("/v1/events", json=cloudevent(1))).json()
    await wait_for(lambda: recv.ids("ok") == ["order-1"])
    replayed = await client.post(
        f"/v1/subscriptions/{sub}/replay", json={"after": first["sequence"] - 1}
    )
    assert replayed.status_code == 202
    await wait_for(lambda: recv.ids("ok") == ["order-1", "order-1"])
    assert (await client.delete(f"/v1/subscriptions/{sub}")).status_code == 204
    assert (await client.get("/v1/subscriptions")).json() == {"subscriptions": []}
    await client.post("/v1/events", json=cloudevent(2))
    await asyncio.sleep(0.3)
    assert recv.ids("ok") == ["order-1", "order-1"]
    assert (await client.delete(f"/v1/subscriptions/{sub}")).status_code == 404


async def test_replay_of_a_range_delivers_just_that_range(client, receiver):
    recv, base = receiver
    sub = await subscribe(client, f"{base}/ok")
    posted = (await client.post("/v1/events", json=[cloudevent(n) for n in range(4)])).json()
    await wait_for(lambda: len(recv.ids("ok")) == 4)
    first = posted[0]["sequence"]
    bad = await client.post(
        f"/v1/subscriptions/{sub}/replay", json={"after": first + 2, "until": first + 1}
    )
    assert bad.status_code == 422 and "until" in bad.text
    replayed = await client.post(
        f"/v1/subscriptions/{sub}/replay", json={"after": first, "until": first + 2}
    )
    assert replayed.status_code == 202
    await wait_for(lambda: len(recv.ids("ok")) == 6)
    await client.post("/v1/events", json=cloudevent(4))
    await wait_for(lambda: len(recv.ids("ok")) == 7)
    await asyncio.sleep(0.2)
    assert recv.ids("ok") == [f"order-{n}" for n in (0, 1, 2, 3, 1, 2, 4)]


async def test_a_subscription_sees_only_its_tenant(client, receiver):
    recv, base = receiver
    acme = await key_for(client, "acme", "events:read", "events:write")
    sub = await subscribe(client, f"{base}/ok", headers=acme)
    await client.post("/v1/events", json=cloudevent(1))  # the admin's tenant
    await client.post("/v1/events", json=cloudevent(2), headers=acme)
    await wait_for(lambda: len(recv.ids("ok")) == 1)
    await asyncio.sleep(0.1)
    assert recv.ids("ok") == ["order-2"]
    # Other tenants cannot see, delete or replay it.
    assert (await client.get(f"/v1/subscriptions/{sub}")).status_code == 404
    assert (await client.delete(f"/v1/subscriptions/{sub}")).status_code == 404
    assert (await client.get("/v1/subscriptions", headers=acme)).json()["subscriptions"][0][
        "id"
    ] == sub


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://x/y", "secret": SECRET}, "url"),
        ({"url": "not a url", "secret": SECRET}, "url"),
        ({"url": "http://u:p@host/x", "secret": SECRET}, "url"),
        ({"url": "http://host/x", "secret": "short"}, "secret"),
        ({"url": "http://host/x"}, "secret"),
        ({"url": "http://host/x", "secret": SECRET, "types": "shop"}, "types"),
        ({"url": "http://host/x", "secret": SECRET, "types": ["bad type"]}, "type"),
        ({"url": "http://host/x", "secret": SECRET, "extra": 1}, "extra"),
    ],
)
async def test_bad_subscriptions_are_refused_and_nothing_is_created(client, body, field):
    response = await client.post("/v1/subscriptions", json=body)
    assert response.status_code == 422, response.text
    assert field in response.text
    assert (await client.get("/v1/subscriptions")).json() == {"subscriptions": []}


async def test_unknown_subscription_is_404(client):
    assert (await client.get("/v1/subscriptions/sub_nope/dead-letters")).status_code == 404
    response = await client.post("/v1/subscriptions/sub_nope/replay", json={"after": 0})
    assert response.status_code == 404
    bad = await client.post("/v1/subscriptions/sub_nope/replay", json={"after": -1})
    assert bad.status_code == 422


def test_backoff_grows_exponentially_with_jitter_and_a_cap():
    delays = [[backoff(a, 1.0, 8.0) for _ in range(200)] for a in range(1, 7)]
    for attempt, samples in enumerate(delays, start=1):
        ceiling = min(8.0, 2 ** (attempt - 1))
        assert all(ceiling / 2 <= d <= ceiling for d in samples)
        assert len({round(d, 6) for d in samples}) > 100  # jittered, not fixed
