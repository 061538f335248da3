"""Per-version timeouts and retries of retryable failures, in process against a real upstream."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from meshgate.config import Settings
from tests.conftest import app_client
from tests.models.fake_openai import FakeOpenAI, UpstreamLoop


@pytest.fixture(scope="module")
def slow(upstreams: UpstreamLoop) -> FakeOpenAI:
    return upstreams.fake("slow")


def model(name: str, upstream: FakeOpenAI, **resilience: Any) -> dict[str, Any]:
    provider = {"type": "openai", "base_url": upstream.base_url}
    version = {"version": "1", "provider": provider, "resilience": resilience}
    return {"name": name, "task": "chat", "versions": [version]}


@pytest.fixture
async def chat_client(
    make_settings: Callable[..., Settings], slow: FakeOpenAI
) -> AsyncIterator[httpx.AsyncClient]:
    models = [
        model("impatient", slow, timeout_seconds=0.2, retries=0),
        model("persistent", slow, retries=2, backoff_seconds=0.01),
    ]
    async with app_client(make_settings(models=models)) as c:
        yield c


def ask(content: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": content}]


async def test_a_version_that_exceeds_its_timeout_answers_504(
    chat_client: httpx.AsyncClient, slow: FakeOpenAI
) -> None:
    started = time.monotonic()
    response = await chat_client.post(
        "/v1/chat/completions", json={"model": "impatient", "messages": ask("sleep 2")}
    )
    assert time.monotonic() - started < 1.5
    assert response.status_code == 504
    assert "within 0.2s" in response.json()["error"]["message"]
    fast = await chat_client.post(
        "/v1/chat/completions", json={"model": "impatient", "messages": ask("sleep 0.01")}
    )
    assert fast.status_code == 200


async def test_retryable_failures_are_retried_and_caller_errors_are_not(
    chat_client: httpx.AsyncClient, slow: FakeOpenAI
) -> None:
    slow.fail_status = 502
    try:
        before = slow.calls()
        failed = await chat_client.post(
            "/v1/chat/completions", json={"model": "persistent", "messages": ask("x")}
        )
        assert failed.status_code == 502 and slow.calls() == before + 3
    finally:
        slow.fail_status = None
    before = slow.calls()
    rejected = await chat_client.post(
        "/v1/chat/completions", json={"model": "persistent", "messages": ask("reject me")}
    )
    assert rejected.status_code == 400 and slow.calls() == before + 1
