"""The model routes are in the generated OpenAPI document, with their request schemas."""

from __future__ import annotations

import httpx


async def test_model_routes_are_documented(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    paths = doc["paths"]
    chat = paths["/v1/chat/completions"]["post"]
    schema = chat["requestBody"]["content"]["application/json"]["schema"]
    assert schema["required"] == ["model", "messages"]
    assert {p["name"] for p in chat["parameters"]} >= {"x-user-id", "x-session-id"}
    assert "requestBody" in paths["/v2/models/{name}/infer"]["post"]
    for path in (
        "/v1/models",
        "/v1/embeddings",
        "/v2/health/live",
        "/v2/models/{name}/versions/{version}/infer",
        "/v1/registry/models/{name}/traffic",
        "/v1/predictions/{prediction_id}/feedback",
    ):
        assert path in paths, path
