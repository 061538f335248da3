"""Fixtures of the economics tests: a fake upstream (a real HTTP server) and the whole app in
process on it, reached through the official ``openai`` client and plain HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import openai
import pytest

from meshgate.config import Settings
from tests.conftest import app_client
from tests.models.fake_openai import FakeOpenAI, UpstreamLoop


@pytest.fixture(scope="package")
def upstreams() -> Iterator[UpstreamLoop]:
    loop = UpstreamLoop()
    yield loop
    loop.close()


@pytest.fixture(scope="package")
def upstream(upstreams: UpstreamLoop) -> FakeOpenAI:
    return upstreams.fake("upstream")


def chat_model(name: str, upstream: FakeOpenAI, upstream_model: str = "up-1") -> dict[str, Any]:
    provider = {"type": "openai", "base_url": upstream.base_url, "model": upstream_model}
    return {"name": name, "task": "chat", "versions": [{"version": "1", "provider": provider}]}


def declarations(upstream: FakeOpenAI) -> list[dict[str, Any]]:
    return [
        chat_model("alpha", upstream),
        chat_model("beta", upstream),
        chat_model("guarded", upstream),
        chat_model("strict-json", upstream),
        chat_model("priced", upstream, "gpt-4o-mini"),
        {**chat_model("cached", upstream), "context_policy": {"allow": ["preferences.language"]}},
        {**chat_model("cached", upstream), "tenant": "other"},
        {**chat_model("semantic", upstream), "context_policy": {"allow": ["preferences.language"]}},
        {**chat_model("semantic", upstream), "tenant": "other"},
        {**chat_model("embedder", upstream, "embed-1"), "task": "embedding"},
        {**chat_model("embedder", upstream, "embed-1"), "task": "embedding", "tenant": "other"},
    ]


@pytest.fixture
async def admin(
    make_settings: Callable[..., Settings], upstream: FakeOpenAI
) -> AsyncIterator[httpx.AsyncClient]:
    """The app in process with chat models on the fake upstream; the admin key's client."""
    async with app_client(make_settings(models=declarations(upstream))) as client:
        yield client


async def new_key(
    admin: httpx.AsyncClient, scopes: list[str] | None = None, **extra: Any
) -> tuple[str, str]:
    """(id, secret) of a fresh key of the default tenant."""
    response = await admin.post("/v1/admin/keys", json={"scopes": scopes or ["inference"], **extra})
    assert response.status_code == 201, response.text
    return str(response.json()["id"]), str(response.json()["key"])


def as_key(admin: httpx.AsyncClient, key: str) -> httpx.AsyncClient:
    """Another client of the same app, with ``key``."""
    return httpx.AsyncClient(
        transport=admin._transport,
        base_url=admin.base_url,
        headers={"Authorization": f"Bearer {key}"},
    )


def openai_client(admin: httpx.AsyncClient, key: str, **headers: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        base_url=str(admin.base_url) + "/v1",
        api_key=key,
        max_retries=0,
        default_headers=headers or None,
        http_client=httpx.AsyncClient(transport=admin._transport),
    )
