"""Fixtures of the security tests: a fake upstream that records what it is sent, and keys."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.models.fake_openai import FakeOpenAI, UpstreamLoop


@pytest.fixture(scope="package")
def upstream_loop() -> Iterator[UpstreamLoop]:
    loop = UpstreamLoop()
    yield loop
    loop.close()


@pytest.fixture
def attacker(upstream_loop: UpstreamLoop) -> FakeOpenAI:
    """A real HTTP server that answers like OpenAI and records every Authorization header."""
    return upstream_loop.fake("attacker")


async def make_key(client: httpx.AsyncClient, tenant: str, *scopes: str) -> str:
    created = await client.post("/v1/admin/keys", json={"tenant": tenant, "scopes": list(scopes)})
    assert created.status_code == 201, created.text
    return str(created.json()["key"])


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def chat_model(
    client: httpx.AsyncClient, key: str, name: str, provider: dict[str, object]
) -> httpx.Response:
    """Registers a chat model and its version 1 with ``provider`` as the tenant of ``key``."""
    created = await client.post(
        "/v1/registry/models", json={"name": name, "task": "chat"}, headers=bearer(key)
    )
    assert created.status_code == 201, created.text
    return await client.post(
        f"/v1/registry/models/{name}/versions",
        json={"version": "1", "provider": provider},
        headers=bearer(key),
    )


def chat(model: str) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": "hi"}]}
