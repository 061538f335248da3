"""Prices per model version, the cost of each call in ``prediction.made``, and spend
aggregated from the log."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.economics.conftest import new_key, openai_client

PRICE = {"input_per_mtok": 1.0, "output_per_mtok": 2.0, "currency": "EUR"}
# The fake upstream reports 7 prompt and 5 completion tokens per chat call.
ONE_CALL = (7 * 1.0 + 5 * 2.0) / 1_000_000


async def spend(admin: httpx.AsyncClient, **params: str) -> dict[str, Any]:
    response = await admin.get("/v1/spend", params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def eventually_spend(
    admin: httpx.AsyncClient, want: int, group: str, **params: str
) -> dict[str, Any]:
    """The group's row once the consumer has handled ``want`` requests of it."""
    for _ in range(200):
        rows = (await spend(admin, **params))["groups"]
        row = next((r for r in rows if r[params["group_by"]] == group), None)
        if row is not None and row["requests"] >= want:
            return row
        await asyncio.sleep(0.05)
    raise AssertionError(f"spend of {group} never reached {want} requests: {rows}")


async def test_a_registry_price_costs_each_call_and_spend_adds_up(
    admin: httpx.AsyncClient,
) -> None:
    put = await admin.put("/v1/registry/models/alpha/versions/1/price", json=PRICE)
    assert put.status_code == 200, put.text
    assert put.json()["source"] == "registry" and put.json()["cached_input_per_mtok"] == 1.0
    key_id, key = await new_key(admin)
    client = openai_client(admin, key)
    for _ in range(2):
        await client.chat.completions.create(
            model="alpha", messages=[{"role": "user", "content": "hi"}]
        )

    events = await admin.get("/v1/events", params={"type": "meshgate.prediction.made"})
    data = [e["data"] for e in events.json()["events"] if e["data"].get("key_id") == key_id]
    assert len(data) == 2
    assert data[0]["usage"] == {"input_tokens": 7, "output_tokens": 5, "cached_tokens": 0}
    assert data[0]["cost"] == {"amount": pytest.approx(ONE_CALL), "currency": "EUR"}

    row = await eventually_spend(admin, 2, key_id, group_by="key")
    assert row["amount"] == pytest.approx(2 * ONE_CALL) and row["currency"] == "EUR"
    assert (row["input_tokens"], row["output_tokens"]) == (14, 10)
    by_model = await eventually_spend(admin, 2, "alpha", group_by="model")
    assert by_model["amount"] >= 2 * ONE_CALL - 1e-12
    metrics = (await admin.get("/metrics")).text
    assert 'meshgate_spend_total{currency="EUR",model="alpha",tenant="default"}' in metrics


async def test_a_replayed_spend_group_counts_each_call_once(admin: httpx.AsyncClient) -> None:
    services = admin.app.state.services  # type: ignore[attr-defined]
    put = await admin.put("/v1/registry/models/alpha/versions/1/price", json=PRICE)
    assert put.status_code == 200, put.text
    key_id, key = await new_key(admin)
    client = openai_client(admin, key)
    for _ in range(3):
        await client.chat.completions.create(
            model="alpha", messages=[{"role": "user", "content": "hi"}]
        )
    row = await eventually_spend(admin, 3, key_id, group_by="key")
    metric = 'meshgate_spend_tokens_total{kind="input",model="alpha",tenant="default"}'

    def tokens(text: str) -> float:
        line = next(x for x in text.splitlines() if x.startswith(metric))
        return float(line.split()[-1])

    counted = tokens((await admin.get("/metrics")).text)
    # The whole log again, in one batch: each call is already a row, so nothing is added.
    end = await services.events.log.last_sequence()
    await services.events.replay("economics.spend", after=0)
    for _ in range(200):
        if await services.events.log.committed("economics.spend") >= end:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the replayed spend group never reached the end of the log")
    assert await eventually_spend(admin, 3, key_id, group_by="key") == row
    assert tokens((await admin.get("/metrics")).text) == counted


async def test_a_streamed_call_is_charged_once_it_ends(admin: httpx.AsyncClient) -> None:
    await admin.put("/v1/registry/models/beta/versions/1/price", json=PRICE)
    key_id, key = await new_key(admin)
    stream = await openai_client(admin, key).chat.completions.create(
        model="beta",
        messages=[{"role": "user", "content": "a b c"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    _ = [c async for c in stream]
    row = await eventually_spend(admin, 1, key_id, group_by="key")
    # The fake's stream reports 7 prompt tokens and one completion token per word.
    assert row["input_tokens"] == 7 and row["output_tokens"] == 5
    assert row["amount"] == pytest.approx((7 + 2 * 5) / 1_000_000)


async def test_well_known_models_have_a_default_price(admin: httpx.AsyncClient) -> None:
    response = await admin.get("/v1/registry/models/priced/versions/1/price")
    assert response.status_code == 200, response.text
    price = response.json()
    assert price["source"] == "default" and price["currency"] == "USD"
    assert price["input_per_mtok"] == 0.15 and price["output_per_mtok"] == 0.6
    assert (await admin.get("/v1/registry/models/beta/versions/1/price")).status_code in (
        200,
        404,
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"input_per_mtok": -1, "output_per_mtok": 1}, "input_per_mtok"),
        ({"input_per_mtok": 1, "output_per_mtok": -0.5}, "output_per_mtok"),
        ({**PRICE, "cached_input_per_mtok": -2}, "cached_input_per_mtok"),
        ({**PRICE, "currency": "euros"}, "currency"),
    ],
)
async def test_bad_prices_name_the_field_and_change_nothing(
    admin: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    await admin.put("/v1/registry/models/alpha/versions/1/price", json=PRICE)
    response = await admin.put("/v1/registry/models/alpha/versions/1/price", json=body)
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]
    after = (await admin.get("/v1/registry/models/alpha/versions/1/price")).json()
    assert after["input_per_mtok"] == 1.0 and after["currency"] == "EUR"


async def test_prices_of_unknown_versions_are_not_found(admin: httpx.AsyncClient) -> None:
    missing = await admin.put("/v1/registry/models/alpha/versions/9/price", json=PRICE)
    assert missing.status_code == 404


@pytest.mark.parametrize(
    "params",
    [{"group_by": "colour"}, {"since": "yesterday"}, {"until": "2026-01-01T00:00:00"}],
)
async def test_bad_spend_queries_are_422(admin: httpx.AsyncClient, params: dict[str, str]) -> None:
    response = await admin.get("/v1/spend", params=params)
    assert response.status_code == 422, response.text
    assert next(iter(params)) in response.json()["detail"]
