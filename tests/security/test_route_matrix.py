"""The security matrix, derived from the app's own route table and OpenAPI document.

Every route, including one added later, is run with hostile input by a key that holds every
scope but ``users:assert`` and ``admin``: it names another user (``x-user-id``, ``user``, that
user's session), and must neither hand out that user's context (to the caller or to a model
upstream) nor fail with a 5xx. No route's answer ever carries a platform secret. Every
provider type with a URL field refuses an internal address, so a new provider type is checked
by the egress policy too.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from meshgate.auth import SCOPES
from tests.conftest import ADMIN_KEY
from tests.gateway.test_auth_matrix import fill, http_routes
from tests.models.fake_openai import FakeOpenAI
from tests.security.conftest import bearer, make_key

ALICE_SECRET = "alice-private-preference-7d1f"
CREDENTIAL_SECRET = "sk-platform-secret-93b2"
URL_FIELD = re.compile(r"(^|_)(url|endpoint)$")
METADATA = "http://169.254.169.254/latest"


async def alice_with_model(client: httpx.AsyncClient, upstream: FakeOpenAI) -> str:
    admin = bearer(await make_key(client, "acme", "admin"))
    await client.patch(
        "/v1/context/users/alice", json={"preferences": {"note": ALICE_SECRET}}, headers=admin
    )
    session = await client.post(
        "/v1/context/sessions", json={"user_id": "alice", "channel": "web"}, headers=admin
    )
    sid = str(session.json()["session_id"])
    turn = {"role": "user", "content": ALICE_SECRET}
    await client.post(f"/v1/context/sessions/{sid}/interactions", json=turn, headers=admin)
    model = {
        "name": "support",
        "task": "chat",
        "context_policy": {"allow": ["preferences.note", "interactions.last:5"]},
    }
    await client.post("/v1/registry/models", json=model, headers=admin)
    version = {"version": "1", "provider": {"type": "openai", "base_url": upstream.base_url}}
    made = await client.post("/v1/registry/models/support/versions", json=version, headers=admin)
    assert made.status_code == 201, made.text
    return sid


async def test_no_route_trusts_a_user_the_caller_has_not_proven(
    client: httpx.AsyncClient, attacker: FakeOpenAI
) -> None:
    sid = await alice_with_model(client, attacker)
    scopes = [s for s in SCOPES if s not in ("admin", "users:assert")]
    key = await make_key(client, "acme", *scopes)
    headers = {**bearer(key), "x-user-id": "alice", "x-session-id": sid}
    body = {
        "model": "support",
        "user": "alice",
        "messages": [{"role": "user", "content": "repeat everything you know about me"}],
        "input": "repeat everything you know about me",
        "prompt": "repeat everything you know about me",
    }
    seen = 0
    for method, path in routes(client.app):  # type: ignore[attr-defined]
        target = fill(path.replace("{name}", "support"), "x")
        response = await client.request(method, target, headers=headers, json=body)
        assert response.status_code < 500, (method, path, response.text)
        assert ALICE_SECRET not in response.text, (method, path)
        seen += 1
    assert seen > 20
    assert all(ALICE_SECRET not in str(r) for r in attacker.requests)


async def test_no_route_ever_answers_a_platform_secret(client: httpx.AsyncClient) -> None:
    made = await client.post(
        "/v1/admin/credentials",
        json={"name": "platform", "secret": CREDENTIAL_SECRET, "tenants": ["default"]},
    )
    assert made.status_code == 201, made.text
    for method, path in routes(client.app):  # type: ignore[attr-defined]
        target = fill(path.replace("{credential}", "platform"), "x")
        response = await client.request(method, target, json={})
        assert response.status_code < 500, (method, path, response.text)
        for secret in (CREDENTIAL_SECRET, ADMIN_KEY):
            assert secret not in response.text, (method, path)


def routes(app: Any) -> list[tuple[str, str]]:
    """(method, path) of every route but the live streams, which never end by design."""
    return [(m, p) for m, p, _ in http_routes(app) if not p.endswith("/stream")]


def provider_schemas(app: Any) -> list[dict[str, Any]]:
    """Every provider type the registry accepts, from the OpenAPI document."""
    schemas = app.openapi()["components"]["schemas"]
    version = next(s for n, s in schemas.items() if n.startswith("VersionCreate"))
    union = version["properties"]["provider"]
    found = []
    for ref in union.get("oneOf") or union.get("anyOf") or []:
        found.append(schemas[ref["$ref"].rsplit("/", 1)[-1]])
    return found


def hostile_provider(schema: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    props, required = schema["properties"], set(schema.get("required", []))
    type_ = props["type"].get("const") or props["type"].get("enum", [None])[0]
    body: dict[str, Any] = {"type": type_}
    urls = [name for name in props if URL_FIELD.search(name)]
    for name in props:
        if name in urls:
            body[name] = METADATA
        elif name in required and name != "type":
            body[name] = "x"
    return body, urls


async def test_every_provider_url_field_passes_the_egress_policy(
    client: httpx.AsyncClient,
) -> None:
    schemas = provider_schemas(client.app)  # type: ignore[attr-defined]
    assert len(schemas) >= 3
    await client.post("/v1/registry/models", json={"name": "egress", "task": "chat"})
    checked = 0
    for n, schema in enumerate(schemas):
        provider, urls = hostile_provider(schema)
        if not urls:
            continue
        answer = await client.post(
            "/v1/registry/models/egress/versions",
            json={"version": f"v{n}", "provider": provider},
        )
        assert answer.status_code == 400, (provider, answer.text)
        assert answer.json()["param"] in {f"provider.{u}" for u in urls}, answer.text
        checked += 1
    assert checked >= 2


@pytest.mark.parametrize("header", ["x-user-id", "x-session-id"])
async def test_identity_headers_are_documented_only_where_honoured(
    client: httpx.AsyncClient, header: str
) -> None:
    """A route documenting an identity header is an inference route of the users:assert rule."""
    document = client.app.openapi()  # type: ignore[attr-defined]
    for path, operations in document["paths"].items():
        for operation in operations.values():
            names = [p.get("name") for p in operation.get("parameters", [])]
            if header in names:
                assert path.startswith(("/v1/", "/v2/")), path
