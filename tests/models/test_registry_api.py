"""The registry and traffic API in process: shapes, immutability, tenants, bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from meshgate.config import Settings
from tests.conftest import app_client

CHAT = {"name": "support-chat", "task": "chat", "risk_level": "limited"}
V1 = {"version": "1", "provider": {"type": "openai", "base_url": "http://127.0.0.1:9/v1"}}
V2 = {"version": "2", "provider": {"type": "openai", "base_url": "http://127.0.0.1:9/v1"}}


@pytest.fixture(params=["sqlite", "postgresql"])
async def store_client(
    request: pytest.FixtureRequest, make_settings: Callable[..., Settings]
) -> AsyncIterator[httpx.AsyncClient]:
    """The app on each SQL store backend: the embedded SQLite and a real PostgreSQL."""
    overrides = {}
    if request.param == "postgresql":
        overrides["database_url"] = request.getfixturevalue("postgres_url")
    async with app_client(make_settings(**overrides)) as client:
        yield client


async def registered(client: httpx.AsyncClient, *versions: dict[str, Any]) -> None:
    assert (await client.post("/v1/registry/models", json=CHAT)).status_code == 201
    for version in versions:
        response = await client.post("/v1/registry/models/support-chat/versions", json=version)
        assert response.status_code == 201, response.text


async def key_for(client: httpx.AsyncClient, tenant: str, *scopes: str) -> dict[str, str]:
    response = await client.post("/v1/admin/keys", json={"tenant": tenant, "scopes": scopes})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['key']}"}


async def test_register_version_alias_traffic_and_history(store_client: httpx.AsyncClient) -> None:
    await registered(store_client, V1, V2)
    alias = await store_client.put(
        "/v1/registry/models/support-chat/aliases/production", json={"version": "1"}
    )
    assert alias.status_code == 200
    policy = {"split": {"1": 90, "2": 10}, "shadow": [], "sticky": "user", "fallback": ["1"]}
    traffic = await store_client.put("/v1/registry/models/support-chat/traffic", json=policy)
    assert traffic.status_code == 200 and traffic.json() == policy

    model = (await store_client.get("/v1/registry/models/support-chat")).json()
    assert model["risk_level"] == "limited" and model["context_policy"] == {"allow": []}
    assert [v["version"] for v in model["versions"]] == ["1", "2"]
    assert model["versions"][0]["registered_by"]
    assert model["aliases"] == {"production": "1"} and model["traffic"] == policy
    listed = (await store_client.get("/v1/registry/models")).json()["models"]
    assert [m["name"] for m in listed] == ["support-chat"]

    history = (await store_client.get("/v1/registry/models/support-chat/history")).json()["history"]
    assert [h["change"] for h in history] == [
        "model.registered",
        "model.version.registered",
        "model.version.registered",
        "model.alias.set",
        "model.traffic.changed",
    ]
    assert history[-1]["details"]["split"] == {"1": 90, "2": 10} and history[-1]["actor"]


async def test_versions_are_immutable(store_client: httpx.AsyncClient) -> None:
    await registered(store_client, V1)
    changed = {**V1, "provider": {"type": "openai", "base_url": "http://elsewhere/v1"}}
    response = await store_client.post("/v1/registry/models/support-chat/versions", json=changed)
    assert response.status_code == 409 and "immutable" in response.json()["detail"]
    model = (await store_client.get("/v1/registry/models/support-chat")).json()
    assert model["versions"][0]["provider"]["base_url"] == "http://127.0.0.1:9/v1"


@pytest.mark.parametrize(
    ("path", "method", "body", "status", "fragment"),
    [
        ("/v1/registry/models", "post", {"name": "x", "task": "poetry"}, 422, "task"),
        ("/v1/registry/models", "post", {"name": "bad name!"}, 422, "name"),
        ("/v1/registry/models", "post", {"name": "x", "surprise": 1}, 422, "surprise"),
        ("/v1/registry/models", "post",
         {"name": "x", "context_policy": {"allow": ["attributes.age", "__dict__"]}}, 422,
         "'__dict__': a path starts with"),
        ("/v1/registry/models/support-chat/versions", "post",
         {"version": "3", "provider": {"type": "python", "entrypoint": "os:system"}}, 400,
         "config file only"),
        ("/v1/registry/models/support-chat/versions", "post",
         {"version": "3", "provider": {"type": "onnx", "artifact": "/etc/passwd"}}, 400,
         "outside the artifact directory"),
        ("/v1/registry/models/support-chat/versions", "post",
         {"version": "3", "provider": {"type": "carrier-pigeon"}}, 422, "provider"),
        ("/v1/registry/models/support-chat/traffic", "put", {"split": {"1": 60}}, 422,
         "sum to 100"),
        ("/v1/registry/models/support-chat/traffic", "put", {"split": {"1": 50, "9": 50}}, 422,
         "'9'"),
        ("/v1/registry/models/support-chat/traffic", "put",
         {"split": {"1": 100}, "shadow": ["7"]}, 422, "'7'"),
        ("/v1/registry/models/support-chat/aliases/production", "put", {"version": "8"}, 422,
         "'8'"),
        ("/v1/registry/models/nobody/versions", "post", V2, 404, "nobody"),
    ],
)  # fmt: skip
async def test_bad_input_is_named_and_changes_nothing(
    client: httpx.AsyncClient,
    path: str,
    method: str,
    body: dict[str, Any],
    status: int,
    fragment: str,
) -> None:
    await registered(client, V1)
    before = (await client.get("/v1/registry/models")).json()
    history = (await client.get("/v1/registry/models/support-chat/history")).json()
    response = await getattr(client, method)(path, json=body)
    assert response.status_code == status, response.text
    assert fragment in response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert (await client.get("/v1/registry/models")).json() == before
    assert (await client.get("/v1/registry/models/support-chat/history")).json() == history


async def test_models_belong_to_their_tenant(store_client: httpx.AsyncClient) -> None:
    await registered(store_client, V1)
    other = await key_for(store_client, "acme", "registry:write", "inference")
    assert (
        await store_client.get("/v1/registry/models/support-chat", headers=other)
    ).status_code == 404
    assert (await store_client.get("/v1/registry/models", headers=other)).json() == {"models": []}
    hidden = await store_client.post(
        "/v1/registry/models/support-chat/versions", json=V2, headers=other
    )
    assert hidden.status_code == 404
    chat = await store_client.post(
        "/v1/chat/completions",
        json={"model": "support-chat", "messages": [{"role": "user", "content": "x"}]},
        headers=other,
    )
    assert chat.status_code == 404 and chat.json()["error"]["type"] == "not_found_error"
    # the same name is free in another tenant
    assert (
        await store_client.post("/v1/registry/models", json=CHAT, headers=other)
    ).status_code == 201


async def test_changing_needs_registry_write_reading_does_not(client: httpx.AsyncClient) -> None:
    await registered(client, V1)
    reader = await key_for(client, "default", "inference")
    assert (await client.get("/v1/registry/models/support-chat", headers=reader)).status_code == 200
    refused = await client.post(
        "/v1/registry/models/support-chat/versions", json=V2, headers=reader
    )
    assert refused.status_code == 403 and "registry:write" in refused.text
    model = (await client.get("/v1/registry/models/support-chat")).json()
    assert [v["version"] for v in model["versions"]] == ["1"]


async def test_traffic_change_is_in_effect_at_once(client: httpx.AsyncClient) -> None:
    await registered(client, V1, V2)
    await client.put("/v1/registry/models/support-chat/traffic", json={"split": {"2": 100}})
    service = client.app.state.services.models  # type: ignore[attr-defined]
    runtime = await service.runtime("default", "support-chat")
    assert runtime.split.versions == ("2",)
    await client.put("/v1/registry/models/support-chat/traffic", json={"split": {"1": 100}})
    assert (await service.runtime("default", "support-chat")).split.versions == ("1",)


async def test_changes_are_events_and_audit_records(client: httpx.AsyncClient) -> None:
    await registered(client, V1)
    await client.put("/v1/registry/models/support-chat/traffic", json={"split": {"1": 100}})
    events = (await client.get("/v1/events", params={"limit": 1000})).json()["events"]
    types = [e["type"] for e in events if e["type"].startswith("meshgate.model.")]
    assert types == [
        "meshgate.model.registered",
        "meshgate.model.version.registered",
        "meshgate.model.traffic.changed",
    ]
    audit = (await client.get("/v1/audit", params={"resource": "models/support-chat"})).json()
    records = audit["records"] if isinstance(audit, dict) else audit
    actions = [r["action"] for r in records]
    assert actions[:3] == ["model.registered", "model.version.registered", "model.traffic.changed"]
