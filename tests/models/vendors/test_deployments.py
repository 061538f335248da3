"""Several deployments of one version: routing, cooldown on 429/5xx, shared through Redis."""

from __future__ import annotations

import asyncio
from pathlib import Path

import openai
import orjson
import pytest

from meshgate.models.config import DeploymentsProvider
from meshgate.models.deployment_routing import (
    Candidate,
    LeastBusy,
    LowestLatency,
    RedisCooldowns,
    Usage,
    Weighted,
)
from meshgate.models.providers.base import Call
from meshgate.models.providers.deployments import DeploymentsChat
from meshgate.models.providers.http import AiohttpTransport
from meshgate.models.runtime import ProviderFactory
from meshgate.security.egress import EgressPolicy
from tests.conftest import ADMIN_KEY, LOOPBACK, Server
from tests.models.vendors.conftest import Fakes

# A real server starts first: on a busy machine that alone may take minutes.
pytestmark = pytest.mark.timeout(600)


def test_a_deployment_answering_429_cools_down_and_calls_go_to_the_other(
    server: Server, fakes: Fakes
) -> None:
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=ADMIN_KEY, max_retries=0)
    fakes.east.fail_status = 429
    try:
        ask = {"model": "multi", "messages": [{"role": "user", "content": "hi"}]}
        # Weighted at random: call until east has been tried once (each call 1/2 to 1).
        for _ in range(30):
            done = client.chat.completions.create(**ask)  # type: ignore[call-overload]
            assert done.choices[0].message.content == "system=- turns=1 images=0 said=hi"
            if fakes.east.calls():
                break
        assert fakes.east.calls() == 1
        west_before = fakes.west.calls()
        for _ in range(6):
            done = client.chat.completions.create(**ask)  # type: ignore[call-overload]
            assert done.choices[0].finish_reason == "stop"
        stream = client.chat.completions.create(**ask, stream=True)  # type: ignore[call-overload]
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        # Cooling down: east is not asked again; every call went to west, none failed.
        assert fakes.east.calls() == 1
        assert fakes.west.calls() == west_before + 7
    finally:
        fakes.east.fail_status = None


def candidates() -> list[Candidate]:
    return [Candidate("a", 1, 10, None), Candidate("b", 3, None, 1000), Candidate("c", 0, 5, 50)]


def test_strategies_order_by_their_own_measure() -> None:
    a, b, c = candidates()
    assert [x.name for x in Weighted(rand=lambda: 0.0).order([a, b, c])] == ["a", "b", "c"]
    assert next(x.name for x in Weighted(rand=lambda: 0.5).order([a, b, c])) == "b"
    a.figures.in_flight, b.figures.in_flight, c.figures.in_flight = 3, 1, 2
    assert [x.name for x in LeastBusy().order([a, b, c])] == ["b", "c", "a"]
    a.figures.latency, b.figures.latency, c.figures.latency = 0.2, 0.5, None
    assert [x.name for x in LowestLatency().order([a, b, c])] == ["c", "a", "b"]
    a.figures.requests, b.figures.tokens, c.figures.requests = 9, 100, 1
    # Headroom: a 10%, b 90%, c 80%.
    assert [x.name for x in Usage().order([a, b, c])] == ["b", "c", "a"]


def test_latency_is_a_moving_average() -> None:
    a = Candidate("a", 1, None, None)
    for seconds in (1.0, 0.0, 0.0):
        a.figures.started(0.0)
        a.figures.ended(seconds, 0, 0.0)
    assert a.figures.latency == pytest.approx(0.49)


async def test_cooldowns_hold_across_nodes_through_redis(
    fakes: Fakes, redis_url: str, namespace: str
) -> None:
    spec = DeploymentsProvider.model_validate({
        "type": "deployments", "routing": "lowest_latency", "cooldown_seconds": 60,
        "deployments": [
            {"name": "west", "provider": {"type": "openai", "base_url": fakes.west.url + "/v1"}},
            {"name": "east", "provider": {"type": "openai", "base_url": fakes.east.url + "/v1"}},
        ],
    })  # fmt: skip
    transport = AiohttpTransport(egress=EgressPolicy(LOOPBACK))
    factory = ProviderFactory(
        transport, artifact_root=Path("."),
        config_entrypoints=frozenset(), config_artifacts=frozenset(),
    )  # fmt: skip
    nodes = [RedisCooldowns(redis_url, f"{namespace}:cooldown:") for _ in range(2)]
    first, second = (
        DeploymentsChat(spec, lambda p: factory.chat_provider(p, "t"), n) for n in nodes
    )
    request = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    body = orjson.dumps(request)
    fakes.west.fail_status = 503
    try:
        east_before, west_before = fakes.east.calls(), fakes.west.calls()
        # Node one: west (first by the strategy, never measured) fails, east answers.
        reply = await first.chat(body, request, Call(timeout=10))
        assert b"said=hi" in reply.body
        assert (fakes.west.calls(), fakes.east.calls()) == (west_before + 1, east_before + 1)
        # Node two never called west itself: it learns the cooldown from Redis.
        await second.chat(body, request, Call(timeout=10))
        assert (fakes.west.calls(), fakes.east.calls()) == (west_before + 1, east_before + 2)
    finally:
        fakes.west.fail_status = None
        for n in nodes:
            await n.close()
        await transport.close()
        await asyncio.sleep(0)
