"""Read-only GraphQL over models, context and events, with the REST routes' scopes and tenants."""

from __future__ import annotations

import httpx


async def gql(client: httpx.AsyncClient, query: str, key: str | None = None) -> dict:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    response = await client.post("/graphql", json={"query": query}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


async def test_models_users_sessions_and_events_read_through_graphql(
    client: httpx.AsyncClient,
) -> None:
    created = await client.post(
        "/v1/registry/models",
        json={"name": "gql-chat", "task": "chat", "description": "d", "risk_level": "limited"},
    )
    assert created.status_code == 201, created.text
    patched = await client.patch("/v1/context/users/u1", json={"preferences": {"language": "fr"}})
    assert patched.status_code in (200, 201), patched.text
    session = await client.post(
        "/v1/context/sessions", json={"user_id": "u1", "channel": "web", "ttl_seconds": 600}
    )
    session_id = session.json()["session_id"]
    await client.post(
        f"/v1/context/sessions/{session_id}/interactions", json={"role": "user", "content": "hi"}
    )
    published = await client.post(
        "/v1/events",
        json={"specversion": "1.0", "id": "e1", "source": "/crm", "type": "com.acme.lead"},
    )
    assert published.status_code == 201, published.text

    data = (
        await gql(
            client,
            '{ models { name task riskLevel } user(id: "u1") { preferences version }'
            f' session(id: "{session_id}") {{ interactions }}'
            ' events(type: "com.acme.lead") { events nextAfter } }',
        )
    )["data"]
    assert {"name": "gql-chat", "task": "chat", "riskLevel": "limited"} in data["models"]
    assert data["user"] == {"preferences": {"language": "fr"}, "version": 1}
    assert [t["content"] for t in data["session"]["interactions"]] == ["hi"]
    assert [e["id"] for e in data["events"]["events"]] == ["e1"]


async def test_graphql_keeps_scopes_and_tenants(client: httpx.AsyncClient) -> None:
    await client.patch("/v1/context/users/u2", json={"attributes": {"tier": "gold"}})
    other = await client.post(
        "/v1/admin/keys", json={"tenant": "other", "scopes": ["context:read"]}
    )
    narrow = await client.post("/v1/admin/keys", json={"scopes": ["inference"]})
    as_other = await gql(client, '{ user(id: "u2") { attributes } }', other.json()["key"])
    assert as_other["data"] == {"user": None}
    refused = await gql(client, '{ user(id: "u2") { attributes } }', narrow.json()["key"])
    assert "context:read" in refused["errors"][0]["message"]
    assert (
        await client.post(
            "/graphql", json={"query": "{ models { name } }"}, headers={"Authorization": ""}
        )
    ).status_code == 401


async def test_graphql_is_read_only_and_names_bad_queries(client: httpx.AsyncClient) -> None:
    mutation = await gql(client, 'mutation { erase(id: "u1") }')
    assert mutation["errors"]
    unknown = await gql(client, "{ secrets }")
    assert "secrets" in unknown["errors"][0]["message"]
