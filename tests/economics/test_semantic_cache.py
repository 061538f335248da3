"""The semantic response cache: a question worded differently is served the stored answer;
a different question, another tenant or another user's context never is."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from meshgate.config import Settings
from tests.conftest import app_client
from tests.economics.conftest import as_key, declarations
from tests.models.fake_openai import FakeOpenAI

SEMANTIC = {"mode": "semantic", "embedding_model": "embedder", "similarity": 0.9}


async def semantic_on(admin: httpx.AsyncClient, **extra: object) -> None:
    response = await admin.put("/v1/registry/models/semantic/cache", json={**SEMANTIC, **extra})
    assert response.status_code == 200, response.text


async def chat(http: httpx.AsyncClient, content: str, **headers: str) -> httpx.Response:
    body = {"model": "semantic", "messages": [{"role": "user", "content": content}]}
    response = await http.post("/v1/chat/completions", json=body, headers=headers)
    assert response.status_code == 200, response.text
    return response


def chat_calls(upstream: FakeOpenAI) -> int:
    return sum(1 for r in upstream.requests if "messages" in r)


async def test_a_question_worded_differently_is_a_hit(
    admin: httpx.AsyncClient, upstream: FakeOpenAI
) -> None:
    await semantic_on(admin)
    before = chat_calls(upstream)
    first = await chat(admin, "What is the capital of France?")
    again = await chat(admin, "what is the capital of france")
    other = await chat(admin, "How tall is the Eiffel tower?")
    assert [r.headers["x-cache"] for r in (first, again, other)] == ["miss", "hit", "miss"]
    assert again.json() == first.json()
    assert chat_calls(upstream) == before + 2
    bypass = await chat(admin, "What is the capital of France?", **{"cache-control": "no-cache"})
    assert bypass.headers["x-cache"] == "miss" and chat_calls(upstream) == before + 3

    events = (await admin.get("/v1/events", params={"type": "meshgate.prediction.made"})).json()
    made = {e["data"]["prediction_id"]: e["data"] for e in events["events"]}
    hit = made[again.headers["x-prediction-id"]]
    assert hit["cache"] == "hit" and hit["cache_similarity"] >= 0.9 and "cost" not in hit
    # The embedding calls are predictions of the embedding model, like any other call.
    assert any(d["model"] == "embedder" for d in made.values())


async def test_the_similarity_setting_decides(admin: httpx.AsyncClient) -> None:
    await semantic_on(admin, similarity=1.0)
    await chat(admin, "tell me about owls and cats")
    close = await chat(admin, "tell me about owls")
    assert close.headers["x-cache"] == "miss"
    await semantic_on(admin, similarity=0.7)
    closer = await chat(admin, "tell me about owls and cats please")
    assert closer.headers["x-cache"] == "hit"


async def test_semantic_answers_never_cross_tenants(
    admin: httpx.AsyncClient, upstream: FakeOpenAI
) -> None:
    await semantic_on(admin)
    created = await admin.post("/v1/admin/keys", json={"tenant": "other", "scopes": ["admin"]})
    async with as_key(admin, created.json()["key"]) as other:
        await semantic_on(other)
        await chat(admin, "which tenant am I")
        before = chat_calls(upstream)
        response = await chat(other, "Which tenant am I?")
    assert response.headers["x-cache"] == "miss" and chat_calls(upstream) == before + 1


async def test_semantic_answers_never_cross_users_whose_context_differed(
    admin: httpx.AsyncClient, upstream: FakeOpenAI
) -> None:
    await semantic_on(admin)
    for user, language in (("s-de", "de"), ("s-en", "en"), ("s-de2", "de")):
        patch = {"preferences": {"language": language}}
        assert (await admin.patch(f"/v1/context/users/{user}", json=patch)).is_success
    await chat(admin, "Greet me, please", **{"x-user-id": "s-de"})
    before = chat_calls(upstream)
    other_context = await chat(admin, "greet me please", **{"x-user-id": "s-en"})
    assert other_context.headers["x-cache"] == "miss" and chat_calls(upstream) == before + 1
    same_context = await chat(admin, "greet me please!", **{"x-user-id": "s-de2"})
    assert same_context.headers["x-cache"] == "hit"


async def test_an_embedding_model_that_fails_leaves_the_call_uncached(
    admin: httpx.AsyncClient, upstream: FakeOpenAI
) -> None:
    dead = {"type": "openai", "base_url": "http://127.0.0.1:9/v1"}  # nothing listens there
    created = await admin.post("/v1/registry/models", json={"name": "dead", "task": "embedding"})
    assert created.status_code == 201, created.text
    added = await admin.post(
        "/v1/registry/models/dead/versions", json={"version": "1", "provider": dead}
    )
    assert added.status_code == 201, added.text
    await semantic_on(admin, embedding_model="dead")
    before = chat_calls(upstream)
    first = await chat(admin, "is anyone there")
    second = await chat(admin, "is anyone there")
    assert [r.headers["x-cache"] for r in (first, second)] == ["miss", "miss"]
    assert chat_calls(upstream) == before + 2


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"mode": "semantic"}, "embedding_model"),
        ({**SEMANTIC, "similarity": 1.5}, "similarity"),
        ({**SEMANTIC, "similarity": 0.1}, "similarity"),
        ({**SEMANTIC, "embedding_model": "alpha"}, "embedding_model"),
        ({**SEMANTIC, "embedding_model": "no-such-model"}, "embedding_model"),
    ],
)
async def test_bad_semantic_settings_name_the_field_and_change_nothing(
    admin: httpx.AsyncClient, body: dict[str, object], field: str
) -> None:
    before = (await admin.get("/v1/registry/models/semantic/cache")).json()
    response = await admin.put("/v1/registry/models/semantic/cache", json=body)
    assert response.status_code == 422, response.text
    assert field in response.text
    assert (await admin.get("/v1/registry/models/semantic/cache")).json() == before


async def test_on_redis_a_question_answered_by_one_node_is_a_hit_on_another(
    make_settings: Callable[..., Settings],
    upstream: FakeOpenAI,
    redis_url: str,
    namespace: str,
) -> None:
    settings = make_settings(
        models=declarations(upstream), redis_url=redis_url, namespace=namespace
    )
    async with app_client(settings) as first, app_client(settings) as second:
        await semantic_on(first)
        before = chat_calls(upstream)
        asked = await chat(first, "Where do penguins live?")
        answered = await chat(second, "where do penguins live")
        assert (asked.headers["x-cache"], answered.headers["x-cache"]) == ("miss", "hit")
        assert chat_calls(upstream) == before + 1
        assert answered.json() == asked.json()
