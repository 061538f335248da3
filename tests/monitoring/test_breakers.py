"""The breaker alert reads the cluster's breakers: every node's ``meshgate.breaker.*`` reports
in the log, folded per version. It fires once whichever node's breaker opened, resolves when no
node reports it open, and a node that died with its breaker open lets its report lapse."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from meshgate.config import Settings
from meshgate.events.base import Filter
from meshgate.events.catalogue import BREAKER_EVENTS, BreakerTransition
from tests.conftest import app_client
from tests.economics.conftest import as_key, new_key
from tests.models.fake_openai import FakeOpenAI, UpstreamLoop
from tests.monitoring.conftest import Receiver
from tests.monitoring.helpers import applied, breaker, platform_of, predict, report_when
from tests.monitoring.test_alerts import Clock, alert_settings, delivered, monitoring

HI = [{"role": "user", "content": "hi"}]


def breaker_of(report: dict[str, Any], version: str) -> dict[str, Any]:
    found: dict[str, Any] = next(v for v in report["versions"] if v["version"] == version)
    return dict(found["breaker"])


async def test_one_alert_while_any_node_reports_the_breaker_open(
    make_settings: Callable[..., Settings], webhook_receiver: Receiver
) -> None:
    settings = alert_settings(make_settings, webhook_receiver.url, interval_seconds=3600)
    async with app_client(settings) as client:
        platform = platform_of(client)
        service = monitoring(platform, Clock())
        await predict(platform, "chat", "1", latency_ms=5)

        async def move(node: str, state: Any) -> tuple[list[Any], list[Any]]:
            await breaker(platform, "chat", "1", state, node=node, at=service.clock())
            await applied(platform)
            return await service.evaluate()

        (alert,), _ = await move("node-a", "open")
        assert (alert.rule, alert.value) == ("breaker_open", 1.0)
        assert "open on one node" in alert.message
        # The second node's breaker opening too is the same alert, not a second one.
        assert await move("node-b", "open") == ([], [])
        report = await report_when(client, "chat", lambda r: len(r["alerts"]) == 1)
        shown = breaker_of(report, "1")
        assert shown["state"] == "open"
        assert [(n["node"], n["state"]) for n in shown["nodes"]] == [
            ("node-a", "open"),
            ("node-b", "open"),
        ]
        # Closed on one node, half-open (a trial in flight) on the other: still open.
        assert await move("node-a", "closed") == ([], [])
        assert await move("node-b", "half_open") == ([], [])
        fired, (resolved,) = await move("node-b", "closed")
        assert fired == [] and resolved.id == alert.id
        report = await report_when(client, "chat", lambda r: r["alerts"] == [])
        assert breaker_of(report, "1") == {"state": "closed", "nodes": []}

        await webhook_receiver.wait_for(lambda: len(webhook_receiver.requests) == 2)
        types = [delivered(webhook_receiver, i)[1]["type"] for i in range(2)]
        assert types == ["meshgate.alert.fired", "meshgate.alert.resolved"]
        fired_events = await platform.events.read(where=Filter(type="meshgate.alert.fired"))
        assert [e.data["id"] for e in fired_events] == [alert.id]


async def test_a_dead_nodes_open_report_lapses_after_the_reset_window_and_grace(
    make_settings: Callable[..., Settings], webhook_receiver: Receiver
) -> None:
    settings = alert_settings(
        make_settings, webhook_receiver.url, interval_seconds=3600, breaker_grace_seconds=20
    )
    async with app_client(settings) as client:
        platform = platform_of(client)
        clock = Clock()
        service = monitoring(platform, clock)
        opened = clock.now
        await breaker(platform, "chat", "1", "open", node="dead", at=opened, reset_seconds=30)
        await applied(platform)
        (alert,), _ = await service.evaluate()

        clock.now = opened + 49  # reset window 30 s + grace 20 s: still counted
        assert await service.evaluate() == ([], [])
        clock.now = opened + 50  # the node never reported again: its report has lapsed
        _, (resolved,) = await service.evaluate()
        assert resolved.id == alert.id

        # A live node renews its report with each trial (half-open, then open again).
        await breaker(platform, "chat", "1", "open", node="live", at=opened + 60)
        await breaker(platform, "chat", "1", "half_open", node="live", at=opened + 90)
        await breaker(platform, "chat", "1", "open", node="live", at=opened + 91)
        await applied(platform)
        clock.now = opened + 130
        (again,), _ = await service.evaluate()
        assert again.id != alert.id and again.value == 1.0
        # The lapsed report of the dead node was forgotten, not only ignored.
        assert list(service.state.breakers.reports[("default", "chat", "1")]) == ["live"]
        clock.now = opened + 91 + 50
        _, (gone,) = await service.evaluate()
        assert gone.id == again.id


@pytest.fixture
def upstream() -> Iterator[FakeOpenAI]:
    loop = UpstreamLoop()
    yield loop.fake("breaker")
    loop.close()


def flaky_settings(
    make_settings: Callable[..., Settings], url: str, upstream: FakeOpenAI, reset: float
) -> Settings:
    """A chat model whose breaker opens after two failures; only the breaker rule can fire."""
    provider = {"type": "openai", "base_url": upstream.base_url, "model": "up-1"}
    resilience = {"retries": 0, "breaker": {"failures": 2, "reset_seconds": reset}}
    model = {
        "name": "flaky",
        "task": "chat",
        "versions": [{"version": "1", "provider": provider, "resilience": resilience}],
    }
    return alert_settings(lambda **kw: make_settings(models=[model], **kw), url, min_requests=50)


def chatting(admin: httpx.AsyncClient, key: str) -> Callable[[], Any]:
    async def chat() -> int:
        async with as_key(admin, key) as caller:
            body = {"model": "flaky", "messages": HI}
            return (await caller.post("/v1/chat/completions", json=body)).status_code

    return chat


def breaker_moves(events: list[Any]) -> list[BreakerTransition]:
    names = [t.name for t in BREAKER_EVENTS.values()]
    return [BreakerTransition.model_validate(e.data) for e in events if e.type in names]


async def test_a_real_breaker_reports_its_moves_and_fires_one_alert(
    make_settings: Callable[..., Settings], webhook_receiver: Receiver, upstream: FakeOpenAI
) -> None:
    settings = flaky_settings(make_settings, webhook_receiver.url, upstream, reset=0.5)
    async with app_client(settings) as admin:
        platform = platform_of(admin)
        _, key = await new_key(admin, ["inference"])
        chat = chatting(admin, key)
        upstream.fail_status = 500
        assert [await chat() for _ in range(3)] == [502, 502, 503]  # the third: open
        report = await report_when(admin, "flaky", lambda r: len(r["alerts"]) == 1)
        assert report["alerts"][0]["rule"] == "breaker_open"
        assert breaker_of(report, "1")["state"] == "open"

        upstream.fail_status = None
        await asyncio.sleep(0.6)  # the reset window: the next call is the trial
        assert await chat() == 200
        report = await report_when(admin, "flaky", lambda r: r["alerts"] == [])
        assert breaker_of(report, "1") == {"state": "closed", "nodes": []}

        moves = breaker_moves(await platform.events.read(limit=1000))
        assert [m.state for m in moves] == ["open", "half_open", "closed"]
        assert {(m.model, m.version, m.reset_seconds) for m in moves} == {("flaky", "1", 0.5)}
        assert len({m.node for m in moves}) == 1
        await webhook_receiver.wait_for(lambda: len(webhook_receiver.requests) == 2)
        types = [delivered(webhook_receiver, i)[1]["type"] for i in range(2)]
        assert types == ["meshgate.alert.fired", "meshgate.alert.resolved"]
        metrics = (await admin.get("/metrics")).text
        assert 'meshgate_breaker_state{model="flaky",tenant="default",version="1"} 0.0' in metrics


async def test_a_restarted_process_shows_the_same_breakers(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    async with app_client(settings) as client:
        platform = platform_of(client)
        await predict(platform, "chat", "1", latency_ms=5)
        await breaker(platform, "chat", "1", "open", node="node-a")
        await breaker(platform, "chat", "1", "half_open", node="node-b")
        before = await report_when(client, "chat", lambda r: len(breaker_of(r, "1")["nodes"]) == 2)
        last = await platform.events.log.last_sequence()
    async with app_client(settings) as client:
        # From the snapshot, not the log: the breakers are part of monitoring's state.
        assert platform_of(client).monitoring.resumed_from == last
        answer: httpx.Response = await client.get("/v1/monitoring/models/chat")
        assert answer.json() == before


async def test_a_stopping_process_withdraws_its_open_breakers(
    make_settings: Callable[..., Settings], webhook_receiver: Receiver, upstream: FakeOpenAI
) -> None:
    settings = flaky_settings(make_settings, webhook_receiver.url, upstream, reset=30)
    async with app_client(settings) as admin:
        _, key = await new_key(admin, ["inference"])
        upstream.fail_status = 500
        chat = chatting(admin, key)
        assert [await chat() for _ in range(3)] == [502, 502, 503]
        report = await report_when(admin, "flaky", lambda r: len(r["alerts"]) == 1)
        assert len(breaker_of(report, "1")["nodes"]) == 1
    # The process stopped with its breaker open: it said so, and the next one resolves the
    # alert at once instead of waiting 30 s and the grace for the report to lapse.
    async with app_client(settings) as admin:
        report = await report_when(admin, "flaky", lambda r: r["alerts"] == [])
        assert breaker_of(report, "1") == {"state": "closed", "nodes": []}
        moves = breaker_moves(await platform_of(admin).events.read(limit=1000))
        assert [(m.state, m.stopped) for m in moves] == [("open", None), ("closed", True)]
    await webhook_receiver.wait_for(lambda: len(webhook_receiver.requests) == 2)
