"""Fixtures of the economics tests: a fake upstream and one real Meshgate server on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml

from tests.conftest import ADMIN_KEY, Server
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
        {
            "name": "embedder",
            "task": "embedding",
            "versions": [
                {
                    "version": "1",
                    "provider": {"type": "openai", "base_url": upstream.base_url, "model": "e"},
                }
            ],
        },
    ]


def write_config(data_dir: Path, upstream: FakeOpenAI) -> Path:
    data_dir.mkdir(parents=True, exist_ok=True)
    config = data_dir / "meshgate.yaml"
    config.write_text(yaml.safe_dump({"models": declarations(upstream)}))
    return config


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory, upstream: FakeOpenAI) -> Iterator[Server]:
    """One real ``meshgate serve`` with chat models on the fake upstream."""
    data_dir: Path = tmp_path_factory.mktemp("economics-server")
    server = Server({"MESHGATE_CONFIG": str(write_config(data_dir, upstream))}, data_dir)
    yield server
    server.stop()


@pytest.fixture
def admin(server: Server) -> Iterator[httpx.Client]:
    with server.client(ADMIN_KEY) as http:
        yield http


def new_key(admin: httpx.Client, scopes: list[str] | None = None, **extra: Any) -> tuple[str, str]:
    """(id, secret) of a fresh key of the default tenant."""
    response = admin.post("/v1/admin/keys", json={"scopes": scopes or ["inference"], **extra})
    assert response.status_code == 201, response.text
    return str(response.json()["id"]), str(response.json()["key"])


def openai_client(server: Server, key: str, **headers: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=server.url + "/v1", api_key=key, max_retries=0, default_headers=headers or None
    )
