"""GraphQL is bounded: depth, aliases and an estimated cost; a costly query is charged to the
rate limit by its cost; hostile documents are a 400, never a 500."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from meshgate.config import Settings
from tests.conftest import app_client
from tests.security.conftest import bearer, make_key


async def test_two_thousand_aliased_event_pages_are_refused(client: httpx.AsyncClient) -> None:
    fields = " ".join(f"e{n}: events(limit: 1000) {{ nextAfter }}" for n in range(2000))
    refused = await client.post("/graphql", json={"query": "{ " + fields + " }"})
    assert refused.status_code == 400, refused.text[:300]
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["param"] == "query"


async def test_too_many_aliases_too_deep_and_too_costly(client: httpx.AsyncClient) -> None:
    aliases = " ".join(f"m{n}: models {{ name }}" for n in range(30))
    deep = (
        "{ models { name } " + "".join("... on Query { " for _ in range(1)) + "models { name } } }"
    )
    costly = "{ a: events(limit: 1000) { nextAfter } b: events(limit: 1000) { nextAfter } " + (
        "c: events(limit: 1000) { nextAfter } }"
    )
    via_var = {
        "query": "query($n: Int!) { a: events(limit: $n) { nextAfter } "
        "b: events(limit: $n) { nextAfter } c: events(limit: $n) { nextAfter } }",
        "variables": {"n": 1000},
    }
    for body, words in [
        ({"query": "{ " + aliases + " }"}, "aliases"),
        ({"query": costly}, "cost"),
        (via_var, "cost"),
    ]:
        refused = await client.post("/graphql", json=body)
        assert refused.status_code == 400, refused.text
        assert words in refused.json()["detail"]
    ok = await client.post("/graphql", json={"query": deep})
    assert ok.status_code == 200, ok.text


async def test_deep_documents_and_json_are_a_400(client: httpx.AsyncClient) -> None:
    nested = "{ models " * 10_000 + "}" * 10_000
    assert (await client.post("/graphql", json={"query": nested})).status_code == 400
    deep_json = b'{"query": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    answer = await client.post(
        "/graphql", content=deep_json, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 400, answer.text[:300]
    cyclic = "query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }"
    assert (await client.post("/graphql", json={"query": cyclic})).status_code == 400
    deep_get = "{ models " * 1000 + "}" * 1000
    assert (await client.get("/graphql", params={"query": deep_get})).status_code == 400


async def test_a_costly_query_is_charged_by_its_cost(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(limits={"key_rpm": 30})
    async with app_client(settings) as client:
        key = bearer(await make_key(client, "acme", "events:read"))
        page = {"query": "{ events(limit: 1000) { nextAfter } }"}
        first = await client.post("/graphql", json=page, headers=key)
        assert first.status_code == 200, first.text
        assert "errors" not in first.json()
        # 1000 items cost ten requests each time: the third such query is over 30 a minute.
        statuses = [(await client.post("/graphql", json=page, headers=key)).status_code]
        statuses.append((await client.post("/graphql", json=page, headers=key)).status_code)
        assert statuses[-1] == 429, statuses
        cheap = await client.get("/v1/models", headers=key)
        assert cheap.status_code in (200, 403, 429)
