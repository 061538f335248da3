"""The response cache: hits and misses, bypass, and who never shares an answer."""

from __future__ import annotations

import httpx
import pytest

from tests.economics.conftest import as_key, new_key
from tests.models.fake_openai import FakeOpenAI

EMAIL = "jane.doe@example.com"


async def cache_on(admin: httpx.AsyncClient, model: str = "cached") -> None:
    response = await admin.put(
        f"/v1/registry/models/{model}/cache", json={"mode": "exact", "ttl_seconds": 60}
    )
    assert response.status_code == 200, response.text


async def chat(
    http: httpx.AsyncClient, content: str, model: str = "cached", **headers: str
) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": content}]}
    response = await http.post("/v1/chat/completions", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response


async def test_a_repeated_request_is_a_hit_recorded_and_charged_nothing(
    admin: httpx.AsyncClient, upstream: FakeOpenAI
) -> None:
    await cache_on(admin)
    before = upstream.calls()
    first = await chat(admin, "what is a cache?")
    second = await chat(admin, "what is a cache?")
    assert (first.headers["x-cache"], second.headers["x-cache"]) == ("miss", "hit")
    assert second.json() == first.json()
    assert upstream.calls() == before + 1
    bypass = await chat(admin, "what is a cache?", **{"cache-control": "no-cache"})
    assert bypass.headers["x-cache"] == "miss" and upstream.calls() == before + 2
    other = await chat(admin, "something else")
    assert other.headers["x-cache"] == "miss"

    events = await admin.get("/v1/events", params={"type": "meshgate.prediction.made"})
    hit = next(
        e["data"]
        for e in events.json()["events"]
        if e["data"]["prediction_id"] == second.headers["x-prediction-id"]
    )
    assert hit["cache"] == "hit" and "cost" not in hit
    assert hit["usage"] == {"input_tokens": 0, "output_tokens": 0, "cached_tokens": 0}


async def test_a_model_without_cache_says_nothing(admin: httpx.AsyncClient) -> None:
    response = await chat(admin, "hello", model="beta")
    assert "x-cache" not in response.headers


async def test_answers_never_cross_tenants(admin: httpx.AsyncClient, upstream: FakeOpenAI) -> None:
    await cache_on(admin)
    created = await admin.post("/v1/admin/keys", json={"tenant": "other", "scopes": ["admin"]})
    async with as_key(admin, created.json()["key"]) as other:
        await cache_on(other)
        await chat(admin, "same question")
        before = upstream.calls()
        response = await chat(other, "same question")
    assert response.headers["x-cache"] == "miss" and upstream.calls() == before + 1


async def test_answers_never_cross_users_whose_context_differed(
    admin: httpx.AsyncClient, upstream: FakeOpenAI
) -> None:
    await cache_on(admin)
    for user, language in (("u-de", "de"), ("u-en", "en"), ("u-de2", "de")):
        patch = {"preferences": {"language": language}}
        assert (await admin.patch(f"/v1/context/users/{user}", json=patch)).is_success
    await chat(admin, "greet me", **{"x-user-id": "u-de"})
    before = upstream.calls()
    other_context = await chat(admin, "greet me", **{"x-user-id": "u-en"})
    assert other_context.headers["x-cache"] == "miss" and upstream.calls() == before + 1
    same_context = await chat(admin, "greet me", **{"x-user-id": "u-de2"})
    assert same_context.headers["x-cache"] == "hit"


async def test_a_hit_restores_the_callers_own_personal_data(
    admin: httpx.AsyncClient, upstream: FakeOpenAI
) -> None:
    await cache_on(admin)
    guard = {"guardrails": [{"check": "pii"}]}
    assert (await admin.put("/v1/registry/models/cached/guardrails", json=guard)).is_success
    _, key = await new_key(admin)
    async with as_key(admin, key) as http:
        await chat(http, f"mail {EMAIL}")
        hit = await chat(http, "mail bob@example.org")
    assert hit.headers["x-cache"] == "hit"  # the same request once redacted
    assert hit.json()["choices"][0]["message"]["content"] == "upstream says: mail bob@example.org"
    assert EMAIL not in hit.text


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"mode": "fuzzy"}, "mode"),
        ({"mode": "exact", "ttl_seconds": -5}, "ttl_seconds"),
    ],
)
async def test_bad_cache_settings_name_the_field_and_change_nothing(
    admin: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    before = (await admin.get("/v1/registry/models/cached/cache")).json()
    response = await admin.put("/v1/registry/models/cached/cache", json=body)
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"]
    assert (await admin.get("/v1/registry/models/cached/cache")).json() == before
