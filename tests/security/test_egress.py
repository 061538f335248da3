"""Server-side request forgery: webhooks and providers reach public addresses only, unless the
operator allow-lists a host or range; the check repeats on the address actually dialled."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from aiohttp import web

from meshgate.config import Settings
from meshgate.security import egress
from tests.conftest import app_client
from tests.models.fake_openai import FakeOpenAI
from tests.security.conftest import bearer, chat, chat_model, make_key

INTERNAL = [
    "http://127.0.0.1:9/hook",
    "http://localhost:9/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://10.0.0.1/hook",
    "http://192.168.1.1/hook",
    "http://[::1]:9/hook",
    "http://[::ffff:127.0.0.1]:9/hook",
    "http://0.0.0.0:9/hook",
    "http://224.0.0.1/hook",
    "http://240.0.0.1/hook",
    "http://100.64.0.1/hook",
]
FAST = {"webhook_max_attempts": 1, "webhook_timeout_seconds": 2}


@pytest.fixture
async def strict(make_settings: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    """The platform with the default (secure) egress policy: nothing non-public allowed."""
    async with app_client(make_settings(security={}, events=FAST)) as client:
        yield client


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[list[bytes], int]]:
    got: list[bytes] = []

    async def hook(request: web.Request) -> web.Response:
        got.append(await request.read())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield got, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    await runner.cleanup()


def subscription(url: str) -> dict[str, Any]:
    return {"url": url, "types": ["com.acme.*"], "secret": "s" * 32}


@pytest.mark.parametrize("url", INTERNAL)
async def test_internal_webhook_urls_are_refused(strict: httpx.AsyncClient, url: str) -> None:
    refused = await strict.post("/v1/subscriptions", json=subscription(url))
    assert refused.status_code == 400, refused.text
    assert refused.json()["param"] == "url"
    assert (await strict.get("/v1/subscriptions")).json()["subscriptions"] == []


@pytest.mark.parametrize("url", INTERNAL[:6])
async def test_internal_provider_urls_are_refused(strict: httpx.AsyncClient, url: str) -> None:
    writer = await make_key(strict, "acme", "registry:write")
    base = url.removesuffix("/hook")
    refused = await chat_model(strict, writer, "m", {"type": "openai", "base_url": base})
    assert refused.status_code == 400, refused.text
    assert refused.json()["param"] == "provider.base_url"
    v2 = await strict.post(
        "/v1/registry/models/m/versions",
        json={"version": "2", "provider": {"type": "v2", "url": base, "model": "x"}},
        headers=bearer(writer),
    )
    assert v2.status_code == 400 and v2.json()["param"] == "provider.url", v2.text


async def test_the_operator_allow_list_lets_a_private_receiver_in(
    make_settings: Callable[..., Settings], receiver: tuple[list[bytes], int]
) -> None:
    got, port = receiver
    settings = make_settings(security={"egress_allow": ["127.0.0.1/32"]}, events=FAST)
    async with app_client(settings) as client:
        made = await client.post(
            "/v1/subscriptions", json=subscription(f"http://127.0.0.1:{port}/hook")
        )
        assert made.status_code == 201, made.text
        refused = await client.post("/v1/subscriptions", json=subscription("http://10.1.2.3/h"))
        assert refused.status_code == 400
        event = {"specversion": "1.0", "id": "e1", "source": "/t", "type": "com.acme.x"}
        assert (await client.post("/v1/events", json=event)).status_code == 201
        for _ in range(250):
            if got:
                break
            await asyncio.sleep(0.02)
        assert len(got) == 1


async def test_dns_rebinding_is_refused_at_connect_time(
    strict: httpx.AsyncClient,
    receiver: tuple[list[bytes], int],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """'localhost' answers a public address when registered, then its real, internal one."""
    got, port = receiver
    real = egress.resolve

    async def first_answer_public(host: str, port: int) -> list[str]:
        return ["93.184.216.34"] if host == "localhost" else await real(host, port)

    monkeypatch.setattr(egress, "resolve", first_answer_public)
    caplog.set_level(logging.WARNING)
    made = await strict.post(
        "/v1/subscriptions", json=subscription(f"http://localhost:{port}/hook")
    )
    assert made.status_code == 201, made.text
    sub = made.json()["id"]
    event = {"specversion": "1.0", "id": "e1", "source": "/t", "type": "com.acme.x"}
    assert (await strict.post("/v1/events", json=event)).status_code == 201
    letters: list[dict[str, Any]] = []
    for _ in range(250):
        letters = (await strict.get(f"/v1/subscriptions/{sub}/dead-letters")).json()["dead_letters"]
        if letters:
            break
        await asyncio.sleep(0.02)
    assert got == []
    # The tenant learns that it failed, not what the inside of the network looks like.
    assert letters and letters[0]["last_error"] == "connection failed"
    assert "127.0.0.1" not in str(letters) and "refused" not in str(letters)
    assert "refused by the egress policy" in caplog.text


async def test_a_provider_rebinding_to_loopback_never_gets_the_call(
    strict: httpx.AsyncClient, attacker: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = egress.resolve

    async def first_answer_public(host: str, port: int) -> list[str]:
        return ["93.184.216.34"] if host == "localhost" else await real(host, port)

    monkeypatch.setattr(egress, "resolve", first_answer_public)
    writer = await make_key(strict, "acme", "registry:write", "inference")
    base = attacker.base_url.replace("127.0.0.1", "localhost")
    made = await chat_model(strict, writer, "m", {"type": "openai", "base_url": base})
    assert made.status_code == 201, made.text
    calls = attacker.calls()
    answer = await strict.post("/v1/chat/completions", json=chat("m"), headers=bearer(writer))
    assert answer.status_code == 502, answer.text
    assert "127.0.0.1" not in answer.text and str(attacker.port) not in answer.text
    assert attacker.calls() == calls
