"""PATCH /v1/registry/models/{name}/traffic is a JSON merge patch: what it leaves out stays.
``meshgate models traffic`` changes only what it is given, the same way."""

from __future__ import annotations

import json

import httpx

CHAT = {"name": "support-chat", "task": "chat"}
UPSTREAM = {"type": "openai", "base_url": "http://127.0.0.1:9/v1"}
POLICY = {"split": {"1": 100}, "shadow": ["3"], "sticky": "session", "fallback": ["2"]}
MERGE = {"content-type": "application/merge-patch+json"}


async def with_three_versions(client: httpx.AsyncClient) -> None:
    assert (await client.post("/v1/registry/models", json=CHAT)).status_code == 201
    for v in ("1", "2", "3"):
        added = await client.post(
            "/v1/registry/models/support-chat/versions", json={"version": v, "provider": UPSTREAM}
        )
        assert added.status_code == 201, added.text
    put = await client.put("/v1/registry/models/support-chat/traffic", json=POLICY)
    assert put.status_code == 200, put.text


async def traffic(client: httpx.AsyncClient) -> dict:
    return (await client.get("/v1/registry/models/support-chat")).json()["traffic"]


async def test_a_split_change_keeps_fallback_shadows_and_stickiness(
    client: httpx.AsyncClient,
) -> None:
    await with_three_versions(client)
    patched = await client.patch(
        "/v1/registry/models/support-chat/traffic",
        content=json.dumps({"split": {"1": 90, "2": 10}}),
        headers=MERGE,
    )
    assert patched.status_code == 200, patched.text
    expected = {**POLICY, "split": {"1": 90, "2": 10}}
    assert patched.json() == expected and await traffic(client) == expected

    # null removes a member: version 1 leaves the split, shadows go back to none.
    removed = await client.patch(
        "/v1/registry/models/support-chat/traffic",
        json={"split": {"1": None, "2": 100}, "shadow": None},
    )
    assert removed.status_code == 200, removed.text
    assert await traffic(client) == {**POLICY, "split": {"2": 100}, "shadow": []}


async def test_a_patch_leaving_an_invalid_policy_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    await with_three_versions(client)
    for patch, status in (
        ({"split": {"2": 10}}, 422),  # 100 + 10
        ({"sticky": "sometimes"}, 422),
        ({"fallback": ["9"]}, 422),  # not a version of the model
        ({"unknown": 1}, 422),
    ):
        answer = await client.patch("/v1/registry/models/support-chat/traffic", json=patch)
        assert answer.status_code in (status, 409), (patch, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert await traffic(client) == POLICY
    missing = await client.patch("/v1/registry/models/nope/traffic", json={"sticky": "none"})
    assert missing.status_code == 404
