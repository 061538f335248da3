"""Budgets through the HTTP API, on the embedded default (in-memory totals)."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.conftest import ADMIN_KEY
from tests.economics.conftest import new_key, openai_client

# One output token costs 1; input is free: a call answering 5 tokens costs exactly 5.
PRICE = {"input_per_mtok": 0, "output_per_mtok": 1_000_000, "currency": "USD"}
HI = [{"role": "user", "content": "hi"}]


async def priced(admin: httpx.AsyncClient, model: str = "alpha") -> None:
    response = await admin.put(f"/v1/registry/models/{model}/versions/1/price", json=PRICE)
    assert response.status_code == 200, response.text


async def test_a_hard_key_budget_refuses_before_the_upstream_with_insufficient_quota(
    admin: httpx.AsyncClient,
) -> None:
    await priced(admin)
    key_id, key = await new_key(admin)
    budget = await admin.put(f"/v1/budgets/key/{key_id}", json={"amount": 12, "period": "day"})
    assert budget.status_code == 200, budget.text
    client = openai_client(admin, key)
    for _ in range(3):  # 0, 5, 10 used before each: all below 12
        await client.chat.completions.create(model="alpha", messages=HI, max_tokens=5)
    with pytest.raises(openai.APIStatusError) as refused:
        await client.chat.completions.create(model="alpha", messages=HI, max_tokens=5)
    assert refused.value.status_code == 402
    body: Any = refused.value.body
    assert body["type"] == "insufficient_quota" and body["code"] == "insufficient_quota"
    view = (await admin.get(f"/v1/budgets/key/{key_id}")).json()
    assert view["used"] == 15 and view["amount"] == 12 and view["hard"] is True
    # Another key of the tenant is not held by this key's budget.
    _, other = await new_key(admin)
    await openai_client(admin, other).chat.completions.create(model="alpha", messages=HI)


async def test_a_soft_level_alerts_once_and_a_soft_only_budget_never_refuses(
    admin: httpx.AsyncClient,
) -> None:
    await priced(admin, "beta")
    key_id, key = await new_key(admin)
    body = {"amount": 10, "soft_at": 0.5, "hard": False}
    assert (await admin.put(f"/v1/budgets/key/{key_id}", json=body)).status_code == 200
    client = openai_client(admin, key)
    for _ in range(4):
        await client.chat.completions.create(model="beta", messages=HI, max_tokens=5)
    events = await admin.get("/v1/events", params={"type": "meshgate.budget.threshold_reached"})
    mine = [e["data"] for e in events.json()["events"] if e["data"]["id"] == key_id]
    assert len(mine) == 1
    assert mine[0]["scope"] == "key" and mine[0]["level"] == "soft"


async def test_a_stream_that_crosses_is_finished_then_charged(admin: httpx.AsyncClient) -> None:
    await priced(admin)
    key_id, key = await new_key(admin)
    await admin.put(f"/v1/budgets/key/{key_id}", json={"amount": 4})
    client = openai_client(admin, key)
    stream = await client.chat.completions.create(
        model="alpha",
        messages=[{"role": "user", "content": "one two three four five six"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text.strip() == "upstream says: one two three four five six"
    assert (await admin.get(f"/v1/budgets/key/{key_id}")).json()["used"] == 8
    with pytest.raises(openai.APIStatusError) as refused:
        await client.chat.completions.create(model="alpha", messages=HI)
    assert refused.value.status_code == 402


async def test_user_and_tenant_budgets(admin: httpx.AsyncClient) -> None:
    await priced(admin)
    key = ADMIN_KEY  # may speak for its users
    assert (await admin.put("/v1/budgets/user/u-42", json={"amount": 1})).status_code == 200
    client = openai_client(admin, key)
    await client.chat.completions.create(model="alpha", messages=HI, user="u-42", max_tokens=5)
    with pytest.raises(openai.APIStatusError) as refused:
        await client.chat.completions.create(model="alpha", messages=HI, user="u-42")
    assert refused.value.status_code == 402
    await client.chat.completions.create(model="alpha", messages=HI, user="u-7")
    tenant = await admin.put("/v1/budgets/tenant/default", json={"amount": 0})
    assert tenant.status_code == 200
    with pytest.raises(openai.APIStatusError):
        await client.chat.completions.create(model="alpha", messages=HI, user="u-7")
    assert (await admin.delete("/v1/budgets/tenant/default")).status_code == 200
    await client.chat.completions.create(model="alpha", messages=HI, user="u-7")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/budgets/user/u-1", {"amount": -1}, "amount"),
        ("/v1/budgets/user/u-1", {"amount": 5, "soft_at": 1.5}, "soft_at"),
        ("/v1/budgets/user/u-1", {"amount": 5, "period": "week"}, "period"),
        ("/v1/budgets/user/u-1", {"amount": 5, "currency": "euros"}, "currency"),
        ("/v1/budgets/team/u-1", {"amount": 5}, "budget_scope"),
    ],
)
async def test_bad_budgets_name_the_field_and_change_nothing(
    admin: httpx.AsyncClient, path: str, body: dict[str, Any], field: str
) -> None:
    await admin.put("/v1/budgets/user/u-1", json={"amount": 3})
    response = await admin.put(path, json=body)
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]
    assert (await admin.get("/v1/budgets/user/u-1")).json()["amount"] == 3


async def test_a_budget_for_an_unknown_key_is_not_found(admin: httpx.AsyncClient) -> None:
    response = await admin.put("/v1/budgets/key/key_nope", json={"amount": 3})
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_budget_counts_only_costs_in_its_own_currency(admin: httpx.AsyncClient) -> None:
    euro = {**PRICE, "currency": "EUR"}
    response = await admin.put("/v1/registry/models/alpha/versions/1/price", json=euro)
    assert response.status_code == 200, response.text
    await priced(admin, "beta")  # in USD
    key_id, key = await new_key(admin)
    budget = await admin.put(f"/v1/budgets/key/{key_id}", json={"amount": 100})
    assert budget.json()["currency"] == "USD"  # unless set
    client = openai_client(admin, key)
    await client.chat.completions.create(model="beta", messages=HI, max_tokens=5)
    with pytest.raises(openai.APIStatusError) as refused:  # EUR is never added to USD
        await client.chat.completions.create(model="alpha", messages=HI, max_tokens=5)
    assert refused.value.status_code == 409
    body: Any = refused.value.body
    assert body["code"] == "budget_currency_mismatch"
    assert "EUR" in body["message"] and "USD" in body["message"]
    assert (await admin.get(f"/v1/budgets/key/{key_id}")).json()["used"] == 5

    # In EUR, the same budget counts the EUR call and refuses the USD one.
    euros = await admin.put(f"/v1/budgets/key/{key_id}", json={"amount": 100, "currency": "EUR"})
    assert euros.json()["currency"] == "EUR"
    assert euros.json()["used"] == 0  # the 5 USD spent are not EUR
    await client.chat.completions.create(model="alpha", messages=HI, max_tokens=5)
    assert (await admin.get(f"/v1/budgets/key/{key_id}")).json()["used"] == 5
    with pytest.raises(openai.APIStatusError) as other:
        await client.chat.completions.create(model="beta", messages=HI, max_tokens=5)
    assert other.value.status_code == 409

    # A soft-only budget in another currency never refuses, and counts nothing of the call.
    soft = {"amount": 100, "currency": "USD", "hard": False}
    assert (await admin.put(f"/v1/budgets/key/{key_id}", json=soft)).is_success
    used = (await admin.get(f"/v1/budgets/key/{key_id}")).json()["used"]
    await client.chat.completions.create(model="alpha", messages=HI, max_tokens=5)
    assert (await admin.get(f"/v1/budgets/key/{key_id}")).json()["used"] == used
