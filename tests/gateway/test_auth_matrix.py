"""The auth matrix, derived from the app's own route table.

Every route outside the public paths answers 401 without a key and 403 to a key that lacks
its scope; every route with a path parameter answers 404 when a key of another tenant names a
resource that exists (or, where an empty body is refused before any lookup, exactly what it
answers for an id that does not exist). A route added later is covered without touching this
file, except that a new kind of path parameter needs a creator in ``CREATORS`` (the test says
which).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

import httpx
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts

from meshgate.auth import SCOPES
from meshgate.core.routing import route_scope
from meshgate.models.demo import SIGNATURE, artifact_dir, train

Creator = Callable[[httpx.AsyncClient], Awaitable[str]]


async def _key(client: httpx.AsyncClient) -> str:
    created = await client.post("/v1/admin/keys", json={"scopes": ["inference"]})
    return str(created.json()["id"])


async def _user(client: httpx.AsyncClient) -> str:
    response = await client.patch("/v1/context/users/u-matrix", json={"attributes": {"a": 1}})
    assert response.status_code in (200, 201), response.text
    return "u-matrix"


async def _session(client: httpx.AsyncClient) -> str:
    body = {"user_id": await _user(client), "channel": "web", "ttl_seconds": 600}
    response = await client.post("/v1/context/sessions", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["session_id"])


async def _response(client: httpx.AsyncClient) -> str:
    """A stored Response: an interaction of a Context Mesh session, as /v1/responses keeps it."""
    session = await _session(client)
    response_id = f"resp_r0_{session}"
    turn = {
        "role": "assistant",
        "content": "{}",
        "metadata": {"response": "r0", "parent": None, "object": {"id": response_id}},
    }
    created = await client.post(f"/v1/context/sessions/{session}/interactions", json=turn)
    assert created.status_code == 201, created.text
    assert (await client.get(f"/v1/responses/{response_id}")).status_code == 200
    return response_id


async def _model(client: httpx.AsyncClient) -> str:
    """A classifier with version 1 (the demo's ONNX artifact) and an alias, once."""
    if (await client.get("/v1/registry/models/mx")).status_code == 200:
        return "mx"
    platform = client.app.state.services  # type: ignore[attr-defined]
    onnx_path, _ = train(artifact_dir(platform.settings))
    created = await client.post(
        "/v1/registry/models", json={"name": "mx", "task": "classification"}
    )
    assert created.status_code == 201, created.text
    version = await client.post(
        "/v1/registry/models/mx/versions",
        json={
            "version": "1",
            "provider": {"type": "onnx", "artifact": str(onnx_path)},
            "signature": SIGNATURE,
        },
    )
    assert version.status_code == 201, version.text
    alias = await client.put("/v1/registry/models/mx/aliases/prod", json={"version": "1"})
    assert alias.status_code == 200, alias.text
    return "mx"


async def _version(client: httpx.AsyncClient) -> str:
    await _model(client)
    return "1"


async def _alias(client: httpx.AsyncClient) -> str:
    await _model(client)
    return "prod"


async def _prediction(client: httpx.AsyncClient) -> str:
    name = await _model(client)
    body = {
        "inputs": [
            {"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [5.1, 3.5, 1.4, 0.2]}
        ]
    }
    response = await client.post(f"/v2/models/{name}/infer", json=body)
    assert response.status_code == 200, response.text
    return response.headers["x-prediction-id"]


async def _subscription(client: httpx.AsyncClient) -> str:
    body = {"url": "http://127.0.0.1:9/hook", "types": ["com.acme.*"], "secret": "s" * 32}
    response = await client.post("/v1/subscriptions", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def _consumer(client: httpx.AsyncClient) -> str:
    response = await client.put(
        "/v1/context/policies/model:mx", json={"allow": ["preferences.language"]}
    )
    assert response.status_code in (200, 201), response.text
    return "model:mx"


async def _credential(client: httpx.AsyncClient) -> str:
    if (await client.get("/v1/admin/credentials/cm")).status_code != 200:
        body = {"name": "cm", "secret": "s-matrix", "tenants": ["default"]}
        response = await client.post("/v1/admin/credentials", json=body)
        assert response.status_code == 201, response.text
    return "cm"


async def _tenant(client: httpx.AsyncClient) -> str:
    return "default"  # the owner's own tenant: the in-process client is its root admin


async def _budget_scope(client: httpx.AsyncClient) -> str:
    return "user"


async def _budget_id(client: httpx.AsyncClient) -> str:
    response = await client.put("/v1/budgets/user/u-budget", json={"amount": 5})
    assert response.status_code == 200, response.text
    return "u-budget"


# Upserts: another tenant writing the same id creates its own resource in its own partition.
# For these the test asserts that the owner's resource is unchanged instead of a 404.
UPSERTS = {
    ("PATCH", "/v1/context/users/{user_id}"): "/v1/context/users/u-matrix",
    ("PUT", "/v1/context/policies/{consumer}"): "/v1/context/policies/model:mx",
}


# A creator makes a resource as the owning tenant and returns the value of the path parameter.
async def _flag(client: httpx.AsyncClient) -> str:
    body = {"variants": {"on": True, "off": False}, "default": "off"}
    response = await client.put("/v1/flags/matrix-flag", json=body)
    assert response.status_code == 200, response.text
    return "matrix-flag"


async def _dataset(client: httpx.AsyncClient) -> str:
    """A dataset of the matrix model, built (the download route needs it built)."""
    name = await _model(client)
    response = await client.post("/v1/datasets", json={"model": name})
    assert response.status_code == 202, response.text
    for _ in range(400):
        state = (await client.get(response.headers["location"])).json()
        if state["status"] == "succeeded":
            return str(state["id"])
        await asyncio.sleep(0.05)
    raise AssertionError(f"the dataset was not built: {state}")


async def _rollout(client: httpx.AsyncClient) -> str:
    """A running rollout of mx: a second version against the first, once."""
    name = await _model(client)
    running = (await client.get(f"/v1/registry/models/{name}/rollouts")).json()["rollouts"]
    if running:
        return str(running[0]["id"])
    model = (await client.get(f"/v1/registry/models/{name}")).json()
    second = {**model["versions"][0], "version": "2"}
    for kept in ("registered_by", "created_at"):
        second.pop(kept, None)
    added = await client.post(f"/v1/registry/models/{name}/versions", json=second)
    assert added.status_code == 201, added.text
    body = {"candidate": "2", "baseline": "1", "interval_seconds": 3600}
    response = await client.post(f"/v1/registry/models/{name}/rollouts", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


CREATORS: dict[str, Creator] = {
    "key_id": _key,
    "user_id": _user,
    "session_id": _session,
    "name": _model,
    "version": _version,
    "alias": _alias,
    "prediction_id": _prediction,
    "sub_id": _subscription,
    "consumer": _consumer,
    "credential": _credential,
    "tenant": _tenant,
    "budget_scope": _budget_scope,
    "budget_id": _budget_id,
    "response_id": _response,
    "flag_key": _flag,
    "dataset_id": _dataset,
    "job_id": _dataset,
    "rollout_id": _rollout,
}


KINDS = {"budget_scope"}
"""Path parameters that name a kind of resource (an enum), not one resource."""


def http_routes(app: object) -> list[tuple[str, str, RouteContext]]:
    """Every (method, path, route) the app serves outside the public paths."""
    public = set(app.state.services.settings.public_paths)  # type: ignore[attr-defined]
    found = []
    for ctx in iter_route_contexts(app.routes):  # type: ignore[attr-defined]
        if ctx.path in public or not ctx.methods:
            continue
        for method in sorted(set(ctx.methods) - {"HEAD", "OPTIONS"}):
            found.append((method, ctx.path, ctx))
    return found


def fill(path: str, value: str = "x") -> str:
    return re.sub(r"\{[^}]+\}", value, path)


async def keys_by_scope(client: httpx.AsyncClient, tenant: str, *also: str) -> dict[str, str]:
    """A key of ``tenant`` per scope, each also holding the scopes ``also``."""
    keys = {}
    for scope in SCOPES:
        scopes = sorted({scope, *also})
        created = await client.post("/v1/admin/keys", json={"tenant": tenant, "scopes": scopes})
        keys[scope] = created.json()["key"]
    return keys


async def test_every_route_needs_a_key(client: httpx.AsyncClient) -> None:
    routes = http_routes(client.app)  # type: ignore[attr-defined]
    assert len(routes) >= 4
    for method, path, _ in routes:
        response = await client.request(method, fill(path), headers={"Authorization": ""})
        assert response.status_code == 401, (method, path, response.text)
        response = await client.request(
            method, fill(path), headers={"Authorization": "Bearer mg_not_a_key"}
        )
        assert response.status_code == 401, (method, path)


async def test_every_scoped_route_refuses_a_key_without_its_scope(
    client: httpx.AsyncClient,
) -> None:
    keys = await keys_by_scope(client, "matrix")
    checked = 0
    for method, path, route in http_routes(client.app):  # type: ignore[attr-defined]
        needed = route_scope(route)
        if needed is None or not isinstance(route.original_route, APIRoute):
            continue
        for scope, key in keys.items():
            if scope in (needed, "admin"):
                continue
            response = await client.request(
                method, fill(path), headers={"Authorization": f"Bearer {key}"}, json={}
            )
            assert response.status_code == 403, (method, path, scope, response.text)
            checked += 1
    assert checked > 0


async def test_another_tenants_resource_is_not_found(client: httpx.AsyncClient) -> None:
    # The intruder speaks for its users (users:assert): only the tenant boundary stops it.
    other = await keys_by_scope(client, "intruder", "users:assert")
    for method, path, route in http_routes(client.app):  # type: ignore[attr-defined]
        params = re.findall(r"\{([^}:]+)", path)
        if not params:
            continue
        missing = [p for p in params if p not in CREATORS]
        assert not missing, f"{method} {path}: add a creator for {missing} to CREATORS"
        values = {p: await CREATORS[p](client) for p in params}
        target = path
        for name, value in values.items():
            target = re.sub(r"\{" + name + r"(:[^}]*)?\}", value, target)
        key = other[route_scope(route) or "inference"]
        owner_view = UPSERTS.get((method, path))
        before = (await client.get(owner_view)).json() if owner_view else None
        response = await client.request(
            method, target, headers={"Authorization": f"Bearer {key}"}, json={}
        )
        if owner_view:
            assert (await client.get(owner_view)).json() == before, (method, path)
            continue
        # Never reveal existence: the answer is the one for an id that does not exist, a 404,
        # or the 422 of an empty body that is checked before any lookup.
        absent = path
        for name, value in values.items():
            # A kind (an enum of the document) keeps its value: only the id is made up.
            made_up = value if name in KINDS else "no-such-id-0"
            absent = re.sub(r"\{" + name + r"(:[^}]*)?\}", made_up, absent)
        missing = await client.request(
            method, absent, headers={"Authorization": f"Bearer {key}"}, json={}
        )
        assert response.status_code == missing.status_code, (method, path, response.text)
        assert response.status_code in (404, 422), (method, path, response.text)
