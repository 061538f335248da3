"""The OpenAPI document shows the context routes, and the answers match what it documents."""

from __future__ import annotations

import httpx

from meshgate.context import schemas


async def test_the_document_lists_every_route_with_its_answer(api: httpx.AsyncClient) -> None:
    doc = (await api.get("/openapi.json")).json()
    paths = doc["paths"]
    user = paths["/v1/context/users/{user_id}"]
    assert set(user) == {"get", "patch", "delete"}
    assert "application/merge-patch+json" in user["patch"]["requestBody"]["content"]
    assert "UserOut" in str(user["get"]["responses"]["200"])
    assert "ErasureReceipt" in str(user["delete"]["responses"]["200"])
    assert "ResolveOut" in str(paths["/v1/context/resolve"]["post"]["responses"]["200"])
    for path in (
        "/v1/context/users/{user_id}/export",
        "/v1/context/sessions",
        "/v1/context/sessions/{session_id}",
        "/v1/context/sessions/{session_id}/interactions",
        "/v1/context/policies",
        "/v1/context/policies/{consumer}",
    ):
        assert path in paths


async def test_answers_match_the_documented_shapes(api: httpx.AsyncClient) -> None:
    r = await api.patch("/v1/context/users/u1", json={"preferences": {"language": "fr"}})
    schemas.UserOut.model_validate(r.json())
    schemas.UserOut.model_validate((await api.get("/v1/context/users/u1")).json())
    r = await api.post("/v1/context/sessions", json={"user_id": "u1"})
    created = schemas.SessionCreated.model_validate(r.json())
    sid = created.session_id
    r = await api.post(
        f"/v1/context/sessions/{sid}/interactions", json={"role": "user", "content": "hi"}
    )
    schemas.InteractionOut.model_validate(r.json())
    schemas.SessionRead.model_validate((await api.get(f"/v1/context/sessions/{sid}")).json())
    r = await api.get(f"/v1/context/sessions/{sid}/interactions")
    schemas.InteractionsOut.model_validate(r.json())
    r = await api.put("/v1/context/policies/model:x", json={"allow": ["preferences.*"]})
    schemas.PolicyOut.model_validate(r.json())
    schemas.PoliciesOut.model_validate((await api.get("/v1/context/policies")).json())
    r = await api.post("/v1/context/resolve", json={"consumer": "model:x", "user_id": "u1"})
    schemas.ResolveOut.model_validate(r.json())
    schemas.ExportOut.model_validate((await api.get("/v1/context/users/u1/export")).json())
    schemas.ErasureReceipt.model_validate((await api.delete("/v1/context/users/u1")).json())
