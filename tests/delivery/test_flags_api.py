"""Feature flags through the HTTP API and through OpenFeature's standard client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from openfeature import api
from openfeature.evaluation_context import EvaluationContext

from meshgate.client.openfeature import MeshgateProvider
from tests.conftest import Server

FLAG = {
    "variants": {"on": True, "off": False},
    "default": "off",
    "rules": [{"if": "attributes.tier == 'gold'", "variant": "on"}],
    "fractional": {"on": 10, "off": 90},
}


async def key(client: httpx.AsyncClient, *scopes: str, tenant: str = "default") -> dict[str, str]:
    made = await client.post("/v1/admin/keys", json={"tenant": tenant, "scopes": list(scopes)})
    assert made.status_code == 201, made.text
    return {"Authorization": f"Bearer {made.json()['key']}"}


async def test_a_flag_is_put_listed_evaluated_and_deleted(client: httpx.AsyncClient) -> None:
    put = await client.put("/v1/flags/new-ui", json=FLAG)
    assert put.status_code == 200, put.text
    assert put.json()["version"] == 1
    again = await client.put("/v1/flags/new-ui", json={**FLAG, "enabled": False})
    assert again.json()["version"] == 2 and again.json()["enabled"] is False
    await client.put("/v1/flags/new-ui", json=FLAG)
    assert [f["key"] for f in (await client.get("/v1/flags")).json()["flags"]] == ["new-ui"]
    assert (await client.get("/v1/flags/new-ui")).json()["rules"][0]["if"].startswith("attr")

    await client.patch("/v1/context/users/gold-1", json={"attributes": {"tier": "gold"}})
    found = await client.post("/v1/flags/evaluate", json={"user_id": "gold-1", "flags": ["new-ui"]})
    assert found.json() == {
        "flags": {"new-ui": {"value": True, "variant": "on", "reason": "TARGETING_MATCH"}}
    }
    plain = await client.post("/v1/flags/evaluate", json={"user_id": "u-2", "flags": ["new-ui"]})
    assert plain.json()["flags"]["new-ui"]["reason"] == "SPLIT"

    assert (await client.delete("/v1/flags/new-ui")).status_code == 204
    assert (await client.get("/v1/flags/new-ui")).status_code == 404
    gone = await client.post("/v1/flags/evaluate", json={"flags": ["new-ui"]})
    assert gone.status_code == 404


async def test_every_change_is_an_event_and_an_audit_record(client: httpx.AsyncClient) -> None:
    await client.put("/v1/flags/checkout", json=FLAG)
    await client.delete("/v1/flags/checkout")
    events = (await client.get("/v1/events", params={"type": "meshgate.flag.changed"})).json()
    assert [e["data"]["action"] for e in events["events"]] == ["put", "deleted"]
    audit = (await client.get("/v1/audit")).json()
    actions = [r["action"] for r in audit["records"]]
    assert "flag.put" in actions and "flag.deleted" in actions


async def test_scopes_tenants_and_asserted_users(client: httpx.AsyncClient) -> None:
    await client.put("/v1/flags/beta", json=FLAG)
    reader = await key(client, "inference")
    assert (await client.put("/v1/flags/beta", json=FLAG, headers=reader)).status_code == 403
    own = await client.post("/v1/flags/evaluate", json={"flags": ["beta"]}, headers=reader)
    assert own.status_code == 200
    named = await client.post(
        "/v1/flags/evaluate", json={"user_id": "alice", "flags": ["beta"]}, headers=reader
    )
    assert named.status_code == 403, "naming a user needs users:assert"
    other = await key(client, "admin", tenant="acme")
    assert (await client.get("/v1/flags/beta", headers=other)).status_code == 404
    assert (await client.get("/v1/flags", headers=other)).json() == {"flags": []}


async def test_bad_flags_change_nothing(client: httpx.AsyncClient) -> None:
    await client.put("/v1/flags/beta", json=FLAG)
    for body in (
        {**FLAG, "rules": [{"if": "attributes.tier ==", "variant": "on"}]},
        {**FLAG, "fractional": {"on": 10, "off": 80}},
        {**FLAG, "default": "maybe"},
        {**FLAG, "rules": [{"if": "__import__('os')", "variant": "on"}]},
    ):
        refused = await client.put("/v1/flags/beta", json=body)
        assert refused.status_code == 422, refused.text
    assert (await client.put("/v1/flags/Bad Key!", json=FLAG)).status_code in (404, 422)
    assert (await client.get("/v1/flags/beta")).json()["version"] == 1


def test_openfeature_evaluates_through_the_provider(start_server: Callable[..., Server]) -> None:
    server = start_server()
    with server.client() as admin:
        assert admin.put("/v1/flags/new-ui", json=FLAG).status_code == 200
        admin.put("/v1/flags/banner", json={"variants": {"a": "hello", "b": "hi"}, "default": "b"})
        admin.patch("/v1/context/users/gold-7", json={"attributes": {"tier": "gold"}})
        made: dict[str, Any] = admin.post(
            "/v1/admin/keys", json={"tenant": "default", "scopes": ["inference", "users:assert"]}
        ).json()
    provider = MeshgateProvider(server.url, api_key=made["key"])
    api.set_provider(provider)
    try:
        client = api.get_client()
        gold = client.get_boolean_details(
            "new-ui", False, EvaluationContext(targeting_key="gold-7")
        )
        assert (gold.value, gold.variant, gold.reason) == (True, "on", "TARGETING_MATCH")
        assert client.get_string_value("banner", "x", EvaluationContext("u")) == "hi"
        missing = client.get_boolean_details("nope", True, EvaluationContext("u"))
        assert missing.value is True and missing.error_code is not None
        mismatch = client.get_string_details("new-ui", "x", EvaluationContext("u"))
        assert mismatch.value == "x" and mismatch.error_code is not None
    finally:
        api.clear_providers()
