"""Erasing a user (``DELETE /v1/context/users/{id}``) reaches cost and cache: spend keeps the
tenant's amounts without the user id, the user's budget and its running total go, and answers
cached for the user's requests are never served again, in memory and on Redis."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from meshgate.config import Settings
from meshgate.economics.module import SpendConsumer
from meshgate.events.base import Filter
from meshgate.events.catalogue import PREDICTION_MADE
from tests.conftest import app_client
from tests.economics.conftest import declarations
from tests.economics.test_semantic_cache import SEMANTIC, chat_calls
from tests.models.fake_openai import FakeOpenAI

PRICE = {"input_per_mtok": 1.0, "output_per_mtok": 2.0, "currency": "EUR"}
ONE_CALL = (7 * 1.0 + 5 * 2.0) / 1_000_000  # the fake reports 7 prompt, 5 completion tokens


@pytest.fixture(params=["memory", "redis"])
async def node(
    request: pytest.FixtureRequest, make_settings: Callable[..., Settings], upstream: FakeOpenAI
) -> AsyncIterator[httpx.AsyncClient]:
    """The app in process; its cache and budget counters in memory or in Redis."""
    shared: dict[str, Any] = {}
    if request.param == "redis":
        shared = {
            "redis_url": request.getfixturevalue("redis_url"),
            "namespace": request.getfixturevalue("namespace"),
        }
    async with app_client(make_settings(models=declarations(upstream), **shared)) as client:
        yield client


async def with_context(node: httpx.AsyncClient, user: str, language: str = "de") -> None:
    patch = {"preferences": {"language": language}}
    response = await node.patch(f"/v1/context/users/{user}", json=patch)
    assert response.is_success, response.text


async def chat(
    node: httpx.AsyncClient, content: str, user: str | None, model: str = "alpha"
) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": content}]}
    headers = {"x-user-id": user} if user else {}
    response = await node.post("/v1/chat/completions", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response


async def erase(node: httpx.AsyncClient, user: str) -> None:
    response = await node.delete(f"/v1/context/users/{user}")
    assert response.status_code == 200, response.text


async def spend_by_user(node: httpx.AsyncClient, want: int) -> list[dict[str, Any]]:
    """Spend grouped by user, once ``want`` requests are counted in all."""
    groups: list[dict[str, Any]] = []
    async with asyncio.timeout(30):
        while sum(g["requests"] for g in groups) < want:
            await asyncio.sleep(0.05)
            response = await node.get("/v1/spend", params={"group_by": "user"})
            groups = response.json()["groups"]
    return groups


async def test_spend_keeps_the_amounts_without_the_user_and_the_budget_goes(
    node: httpx.AsyncClient,
) -> None:
    assert (await node.put("/v1/registry/models/alpha/versions/1/price", json=PRICE)).is_success
    for user in ("erin", "frank"):
        await with_context(node, user)
        budget = await node.put(f"/v1/budgets/user/{user}", json={"amount": 5, "currency": "EUR"})
        assert budget.status_code == 200, budget.text
    await asyncio.sleep(1.1)  # prices and budgets are read again after a second
    for user in ("erin", "erin", "frank"):
        await chat(node, "hi", user)
    before = {g["user"]: g for g in await spend_by_user(node, 3)}
    assert before["erin"]["requests"] == 2 and before["frank"]["requests"] == 1
    assert (await node.get("/v1/budgets/user/erin")).json()["used"] > 0

    await erase(node, "erin")

    after = {g["user"]: g for g in await spend_by_user(node, 3)}
    assert "erin" not in after
    assert after[None]["requests"] == 2  # the tenant's cost stays, under no user
    assert after[None]["amount"] == pytest.approx(2 * ONE_CALL)
    assert after["frank"] == before["frank"]
    assert (await node.get("/v1/budgets/user/erin")).status_code == 404
    assert (await node.get("/v1/budgets/user/frank")).json()["used"] > 0
    # Its running total went with it: a budget set again starts from nothing.
    again = await node.put("/v1/budgets/user/erin", json={"amount": 5, "currency": "EUR"})
    assert again.json()["used"] == 0
    assert (await node.delete("/v1/budgets/user/erin")).is_success
    # The audit trail, which outlives an erasure, names the user's budget only by pseudonym.
    audit = await node.get("/v1/audit", params={"action": "budget.*"})
    assert len(audit.json()["records"]) == 4 and "erin" not in audit.text
    # Erasing again finds nothing left anywhere.
    assert (await node.delete("/v1/context/users/erin")).status_code == 404


@pytest.mark.parametrize("model", ["cached", "semantic"])
async def test_answers_cached_for_the_user_are_never_served_again(
    node: httpx.AsyncClient, upstream: FakeOpenAI, model: str
) -> None:
    cache = SEMANTIC if model == "semantic" else {"mode": "exact", "ttl_seconds": 60}
    assert (await node.put(f"/v1/registry/models/{model}/cache", json=cache)).is_success
    for user in ("erin", "frank", "gina"):  # the same context: they share answers
        await with_context(node, user)
    stored = await chat(node, "greet me", "erin", model)
    assert stored.headers["x-cache"] == "miss"
    assert (await chat(node, "greet me", "frank", model)).headers["x-cache"] == "hit"
    await chat(node, "tell me a joke", "gina", model)

    await erase(node, "erin")

    before = chat_calls(upstream)  # chat calls: the semantic cache also calls for embeddings
    assert (await chat(node, "greet me", "frank", model)).headers["x-cache"] == "miss"
    assert chat_calls(upstream) == before + 1
    # Only the erased user's answers went: another user's stays, and frank's own now hits.
    assert (await chat(node, "tell me a joke", "frank", model)).headers["x-cache"] == "hit"
    assert (await chat(node, "greet me", "gina", model)).headers["x-cache"] == "hit"


async def test_an_answer_to_a_call_in_flight_at_the_erasure_is_not_stored(
    node: httpx.AsyncClient, upstream: FakeOpenAI
) -> None:
    cache = {"mode": "exact", "ttl_seconds": 60}
    assert (await node.put("/v1/registry/models/cached/cache", json=cache)).is_success
    for user in ("erin", "frank"):  # the same context: they would share the answer
        await with_context(node, user)
    before = upstream.calls()
    asked = asyncio.create_task(chat(node, "sleep 0.5", "erin", "cached"))
    async with asyncio.timeout(10):
        while upstream.calls() == before:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    await erase(node, "erin")  # while the upstream still thinks
    assert (await asked).headers["x-cache"] == "miss"
    assert (await chat(node, "sleep 0.5", "frank", "cached")).headers["x-cache"] == "miss"


class OpenedBeforeTheErasure:
    """The event service of a consumer that read its batch just before an erasure: its first
    read gives the personal parts as they were, every later read as they are."""

    def __init__(self, events: Any, opened: list[Any]):
        self.events, self.opened = events, opened

    async def open_records(self, records: list[Any]) -> list[Any]:
        opened, self.opened = self.opened, []
        return opened or list(await self.events.open_records(records))


async def test_a_row_written_after_its_users_erasure_loses_the_user_id(
    admin: httpx.AsyncClient,
) -> None:
    services = admin.app.state.services  # type: ignore[attr-defined]
    await with_context(admin, "erin")
    await chat(admin, "hi", "erin")
    await spend_by_user(admin, 1)
    records = await services.events.log.read(0, 100, Filter(type=PREDICTION_MADE.name))
    opened = await services.events.open_records(records)
    assert [e.personal["user_id"] for e in opened] == ["erin"]
    # The row is not written yet when the erasure runs; it is written right after.
    await services.sql.execute("DELETE FROM economics_spend")
    await erase(admin, "erin")
    late = SpendConsumer(
        OpenedBeforeTheErasure(services.events, opened),  # type: ignore[arg-type]
        services.leases,
        services.economics.spend,
    )
    await late.handle(records)
    groups = (await admin.get("/v1/spend", params={"group_by": "user"})).json()["groups"]
    assert [(g["user"], g["requests"]) for g in groups] == [(None, 1)]
