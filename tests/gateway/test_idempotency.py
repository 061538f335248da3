"""``Idempotency-Key``: a retried POST returns the first answer and does nothing twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import httpx

from meshgate.config import Settings
from meshgate.gateway.middleware.idempotency import MIGRATIONS
from meshgate.sql import migrate, open_sql_store
from tests.conftest import app_client


async def test_a_retry_returns_the_first_answer_and_creates_nothing_more(
    client: httpx.AsyncClient,
) -> None:
    body = {"scopes": ["inference"], "description": "made once"}
    first = await client.post("/v1/admin/keys", json=body, headers={"Idempotency-Key": "k-1"})
    again = await client.post("/v1/admin/keys", json=body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()  # the same key, secret included, not a new one
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    keys = (await client.get("/v1/admin/keys")).json()["keys"]
    assert [k["description"] for k in keys].count("made once") == 1

    other = await client.post("/v1/admin/keys", json=body, headers={"Idempotency-Key": "k-2"})
    assert other.json()["id"] != first.json()["id"]


async def test_a_key_reused_for_another_request_is_refused(client: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "k-3"}
    await client.post("/v1/admin/keys", json={"scopes": ["inference"]}, headers=headers)
    reused = await client.post("/v1/admin/keys", json={"scopes": ["admin"]}, headers=headers)
    assert reused.status_code == 422
    assert "Idempotency-Key" in reused.json()["detail"]
    bad = await client.post("/v1/admin/keys", json={}, headers={"Idempotency-Key": "x" * 256})
    assert bad.status_code == 400


async def test_an_error_answer_is_kept_too(client: httpx.AsyncClient) -> None:
    headers = {"Idempotency-Key": "k-4"}
    first = await client.post("/v1/admin/keys", json={"scopes": ["nope"]}, headers=headers)
    again = await client.post("/v1/admin/keys", json={"scopes": ["nope"]}, headers=headers)
    assert first.status_code == again.status_code == 400
    assert again.json()["detail"] == first.json()["detail"]


async def test_keys_hold_across_nodes_and_concurrent_retries(
    make_settings: Callable[..., Settings], postgres_url: str
) -> None:
    settings = make_settings(database_url=postgres_url, key_pepper="shared")
    body = {"scopes": ["inference"], "description": "one of many"}
    headers = {"Idempotency-Key": "shared-1"}
    async with app_client(settings) as one, app_client(settings) as two:
        answers = await asyncio.gather(
            *(node.post("/v1/admin/keys", json=body, headers=headers) for node in (one, two) * 3)
        )
        made = [a for a in answers if a.status_code == 201]
        assert {a.json()["id"] for a in made} == {made[0].json()["id"]}
        # A retry that met the first one still running was told to come back.
        assert {a.status_code for a in answers} <= {201, 409}
        assert all(a.headers["retry-after"] for a in answers if a.status_code == 409)
        late = await two.post("/v1/admin/keys", json=body, headers=headers)
        assert late.json()["id"] == made[0].json()["id"]
        keys = (await one.get("/v1/admin/keys")).json()["keys"]
        assert [k["description"] for k in keys].count("one of many") == 1


async def test_the_header_is_in_the_openapi_document(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    posts = {path: ops["post"] for path, ops in spec["paths"].items() if "post" in ops}
    assert "/v1/admin/keys" in posts and "/v1/events" in posts
    for path, operation in posts.items():
        names = [p["name"] for p in operation.get("parameters", [])]
        assert names.count("Idempotency-Key") == 1, path


async def test_the_claim_time_is_kept_to_the_millisecond_on_postgresql(postgres_url: str) -> None:
    # A claim goes stale after STALE_SECONDS: a time kept to a minute or two would hand a
    # running request to a retry.
    store = open_sql_store(postgres_url)
    await store.start()
    try:
        await migrate(store, MIGRATIONS)
        moment = time.time()
        await store.execute(
            "INSERT INTO idempotency_keys (tenant, key_id, idem_key, fingerprint, created_at)"
            " VALUES (?, ?, ?, ?, ?)",
            ("t", "k", "i", "f", moment),
        )
        row = await store.fetch_one("SELECT created_at FROM idempotency_keys")
        assert row is not None and abs(row["created_at"] - moment) < 0.001
    finally:
        await store.close()
