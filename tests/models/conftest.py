"""Fixtures of the model tests: fake upstreams and one real Meshgate server configured on them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
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
def primary(upstreams: UpstreamLoop) -> FakeOpenAI:
    return upstreams.fake("primary")


@pytest.fixture(scope="package")
def secondary(upstreams: UpstreamLoop) -> FakeOpenAI:
    return upstreams.fake("secondary")


@pytest.fixture(scope="package")
def flaky(upstreams: UpstreamLoop) -> FakeOpenAI:
    return upstreams.fake("flaky")


def chat_version(version: str, upstream: FakeOpenAI, **extra: Any) -> dict[str, Any]:
    return {
        "version": version,
        "provider": {"type": "openai", "base_url": upstream.base_url, "model": "up-" + version},
        **extra,
    }


def declarations(primary: FakeOpenAI, secondary: FakeOpenAI, flaky: FakeOpenAI) -> list[Any]:
    quick = {"timeout_seconds": 5, "retries": 0, "breaker": {"failures": 3, "reset_seconds": 0.5}}
    return [
        {
            "name": "support-chat",
            "task": "chat",
            "context_policy": {"allow": ["preferences.language"]},
            "versions": [chat_version("1", primary)],
        },
        {
            "name": "embedder",
            "task": "embedding",
            "versions": [chat_version("1", primary)],
        },
        {
            "name": "resilient-chat",
            "task": "chat",
            "versions": [
                chat_version("1", flaky, resilience=quick),
                chat_version("2", secondary),
            ],
            "traffic": {"split": {"1": 100}, "fallback": ["2"], "sticky": "none"},
        },
        {
            "name": "shadowed-chat",
            "task": "chat",
            "versions": [chat_version("1", primary), chat_version("2", secondary)],
            "traffic": {"split": {"1": 100}, "shadow": ["2"], "sticky": "none"},
        },
    ]


@pytest.fixture(scope="package")
def server(
    tmp_path_factory: pytest.TempPathFactory,
    primary: FakeOpenAI,
    secondary: FakeOpenAI,
    flaky: FakeOpenAI,
) -> Iterator[Server]:
    """One real ``meshgate serve`` with the demo models and chat models on the fakes."""
    data_dir: Path = tmp_path_factory.mktemp("models-server")
    config = data_dir / "meshgate.yaml"
    config.write_text(yaml.safe_dump({"models": declarations(primary, secondary, flaky)}))
    server = Server({"MESHGATE_CONFIG": str(config), "MESHGATE_DEMO": "true"}, data_dir)
    yield server
    server.stop()


@pytest.fixture(scope="package")
def inference_key(server: Server) -> str:
    """A key with only the ``inference`` scope."""
    with server.client() as http:
        response = http.post("/v1/admin/keys", json={"scopes": ["inference"]})
        assert response.status_code == 201, response.text
        return str(response.json()["key"])


@pytest.fixture
def admin_http(server: Server) -> Iterator[httpx.Client]:
    with server.client(ADMIN_KEY) as http:
        yield http
