"""Malformed requests get a clear 4xx problem+json naming what is wrong, and change nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from meshgate.config import Settings
from tests.conftest import app_client

PROBLEM = "application/problem+json"


@pytest.fixture
async def small(make_settings: object) -> AsyncIterator[httpx.AsyncClient]:
    settings: Settings = make_settings(max_body_bytes=2048)  # type: ignore[operator]
    async with app_client(settings) as client:
        yield client


async def keys_now(client: httpx.AsyncClient) -> list[dict]:
    return (await client.get("/v1/admin/keys")).json()["keys"]


async def test_malformed_json_is_a_400_naming_the_parse_error(small: httpx.AsyncClient) -> None:
    before = await keys_now(small)
    response = await small.post(
        "/v1/admin/keys",
        content=b'{"scopes": ["inference"]',
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["status"] == 400 and "malformed JSON" in problem["detail"]
    assert problem["request_id"] == response.headers["x-request-id"]
    assert await keys_now(small) == before


async def test_a_body_that_is_not_json_is_refused(small: httpx.AsyncClient) -> None:
    before = await keys_now(small)
    response = await small.post(
        "/v1/admin/keys",
        content=b"scopes=inference",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 415 and "application/json" in response.json()["detail"]
    assert await keys_now(small) == before


async def test_oversized_bodies_are_413_declared_or_streamed(small: httpx.AsyncClient) -> None:
    before = await keys_now(small)
    big = b'{"scopes": ["inference"], "description": "' + b"x" * 4096 + b'"}'
    declared = await small.post(
        "/v1/admin/keys", content=big, headers={"content-type": "application/json"}
    )
    assert declared.status_code == 413 and declared.headers["content-type"] == PROBLEM
    assert "2048 bytes" in declared.json()["detail"]

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(big), 512):
            yield big[i : i + 512]

    streamed = await small.post(
        "/v1/admin/keys", content=chunks(), headers={"content-type": "application/json"}
    )
    assert streamed.status_code == 413 and "2048 bytes" in streamed.json()["detail"]
    assert await keys_now(small) == before


async def test_unknown_routes_and_methods(small: httpx.AsyncClient) -> None:
    missing = await small.get("/v1/nothing-here")
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM
    assert "/v1/nothing-here" in missing.json()["detail"]
    wrong = await small.put("/v1/admin/keys")
    assert wrong.status_code == 405 and wrong.headers["content-type"] == PROBLEM
    assert "PUT" in wrong.json()["detail"]


async def test_wrong_types_and_unknown_fields_are_named(small: httpx.AsyncClient) -> None:
    before = await keys_now(small)
    response = await small.post(
        "/v1/admin/keys", json={"scopes": ["inference"], "rpm": "many", "x": 1}
    )
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"rpm", "x"}
    assert await keys_now(small) == before


async def test_request_id_is_echoed_or_generated(small: httpx.AsyncClient) -> None:
    echoed = await small.get("/v1/whoami", headers={"x-request-id": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    generated = await small.get("/v1/whoami")
    assert len(generated.headers["x-request-id"]) == 32
    hostile = await small.get("/v1/whoami", headers={"x-request-id": "x" * 500})
    assert len(hostile.headers["x-request-id"]) == 32
