"""One policy book decides what a model sees: ``POST /v1/context/resolve`` for ``model:<name>``
returns exactly the context a chat call to that model injects, whatever the policy's form and
wherever it comes from (the model's registered ``context_policy``, the config, the API)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest

from meshgate.config import Settings
from meshgate.models.enrichment import SYSTEM_PREFIX
from tests.conftest import app_client
from tests.economics.conftest import new_key
from tests.models.fake_openai import FakeOpenAI, UpstreamLoop

FORMS: list[list[str]] = [
    [],
    ["attributes.*"],
    ["attributes.tier"],
    ["preferences.language"],
    ["preferences.address.city"],
    ["preferences.*"],
    ["session.*"],
    ["session.channel"],
    ["session.state.step"],
    ["interactions.last:1"],
    ["interactions.*"],
    ["attributes.tier", "preferences.address.*", "session.state.*", "interactions.last:2"],
    ["attributes.missing", "preferences.nothing.here"],
]
PROFILE = {
    "attributes": {"tier": "gold", "age": 41},
    "preferences": {"language": "de", "address": {"city": "Bonn", "zip": "53111"}},
}


@pytest.fixture(scope="module")
def upstreams() -> Iterator[UpstreamLoop]:
    loop = UpstreamLoop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def upstream(upstreams: UpstreamLoop) -> FakeOpenAI:
    return upstreams.fake("upstream")


def chat_model(name: str, upstream: FakeOpenAI, allow: list[str]) -> dict[str, Any]:
    provider = {"type": "openai", "base_url": upstream.base_url, "model": name}
    return {
        "name": name,
        "task": "chat",
        "context_policy": {"allow": allow},
        "versions": [{"version": "1", "provider": provider}],
    }


@pytest.fixture
async def api(
    make_settings: Callable[..., Settings], upstream: FakeOpenAI
) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(
        models=[chat_model("declared", upstream, ["attributes.*"])],
        context={"policies": {"model:declared": ["preferences.language"]}},
    )
    async with app_client(settings) as client:
        yield client


async def fresh_session(api: httpx.AsyncClient, user: str) -> str:
    created = await api.post("/v1/context/sessions", json={"user_id": user, "channel": "web"})
    assert created.status_code == 201, created.text
    sid: str = created.json()["session_id"]
    patched = await api.patch(f"/v1/context/sessions/{sid}", json={"state": {"step": 3}})
    assert patched.status_code == 200, patched.text
    for role, content in (("user", "first"), ("assistant", "second"), ("user", "third")):
        turn = {"role": role, "content": content}
        added = await api.post(f"/v1/context/sessions/{sid}/interactions", json=turn)
        assert added.status_code == 201, added.text
    return sid


def injected(upstream: FakeOpenAI, model: str) -> dict[str, Any]:
    """The context the last call to ``model`` carried to the upstream ({} when none)."""
    sent = [r for r in upstream.requests if r["model"] == model][-1]
    first = sent["messages"][0]
    if first["role"] != "system":
        return {}
    assert first["content"].startswith(SYSTEM_PREFIX)
    found: dict[str, Any] = orjson.loads(first["content"].removeprefix(SYSTEM_PREFIX))
    return found


async def both_views(
    api: httpx.AsyncClient, key: str, upstream: FakeOpenAI, model: str, user: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(what resolve answers for model:<model>, what a chat call to it injects), on a fresh
    session, resolved before the call appends its own turns."""
    sid = await fresh_session(api, user)
    body = {"user_id": user, "session_id": sid, "consumer": f"model:{model}"}
    resolved = await api.post("/v1/context/resolve", json=body)
    assert resolved.status_code == 200, resolved.text
    chat = await api.post(
        "/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        headers={"Authorization": f"Bearer {key}", "x-user-id": user, "x-session-id": sid},
    )
    assert chat.status_code == 200, chat.text
    return resolved.json()["context"], injected(upstream, model)


async def test_resolve_returns_what_inference_injects_for_every_policy_form(
    api: httpx.AsyncClient, upstream: FakeOpenAI
) -> None:
    _, key = await new_key(api, ["inference", "users:assert"])
    assert (await api.patch("/v1/context/users/ann", json=PROFILE)).status_code in (200, 201)
    for index, allow in enumerate(FORMS):
        model = f"form-{index}"
        registered = await api.post(
            "/v1/registry/models",
            json={"name": model, "task": "chat", "context_policy": {"allow": allow}},
        )
        assert registered.status_code == 201, registered.text
        provider = {"type": "openai", "base_url": upstream.base_url, "model": model}
        version = {"version": "1", "provider": provider}
        added = await api.post(f"/v1/registry/models/{model}/versions", json=version)
        assert added.status_code == 201, added.text

        resolved, sent = await both_views(api, key, upstream, model, "ann")
        assert resolved == sent, allow
        described = (await api.get(f"/v1/context/policies/model:{model}")).json()
        assert described == {"consumer": f"model:{model}", "allow": allow, "source": "registry"}

    # The registered policy is not a dead letter: it reaches the model.
    resolved, _ = await both_views(api, key, upstream, "form-3", "ann")
    assert resolved == {"preferences": {"language": "de"}}
    listed = (await api.get("/v1/context/policies")).json()["policies"]
    assert {p["consumer"] for p in listed} >= {f"model:form-{i}" for i in range(len(FORMS))}


async def test_a_policy_set_through_the_api_or_the_config_replaces_the_registered_one_for_both(
    api: httpx.AsyncClient, upstream: FakeOpenAI
) -> None:
    _, key = await new_key(api, ["inference", "users:assert"])
    assert (await api.patch("/v1/context/users/bo", json=PROFILE)).status_code in (200, 201)

    # Registered attributes.*, configured preferences.language: the config decides.
    resolved, sent = await both_views(api, key, upstream, "declared", "bo")
    assert resolved == sent == {"preferences": {"language": "de"}}
    described = (await api.get("/v1/context/policies/model:declared")).json()
    assert described["source"] == "config"

    # A policy set through the API replaces both, for resolve and for inference alike.
    put = await api.put(
        "/v1/context/policies/model:declared", json={"allow": ["attributes.tier", "session.*"]}
    )
    assert put.status_code == 200, put.text
    resolved, sent = await both_views(api, key, upstream, "declared", "bo")
    assert resolved == sent
    assert resolved["attributes"] == {"tier": "gold"} and resolved["session"]["user_id"] == "bo"

    # Removed again: back to the config's.
    assert (await api.delete("/v1/context/policies/model:declared")).status_code == 204
    resolved, sent = await both_views(api, key, upstream, "declared", "bo")
    assert resolved == sent == {"preferences": {"language": "de"}}
