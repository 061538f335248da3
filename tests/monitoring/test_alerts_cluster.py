"""Two nodes on one PostgreSQL and one NATS log: an alert both see fires once, with one
``meshgate.alert.fired`` event and one webhook delivery (the evaluator holds a lease)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from meshgate.config import Settings
from meshgate.events.base import Filter
from tests.conftest import app_client
from tests.events.conftest import drop_nats_stream
from tests.monitoring.conftest import Receiver
from tests.monitoring.helpers import (
    platform_of,
    predict,
    report_when,
    requests_at_least,
    version_of,
)
from tests.monitoring.test_alerts import alert_settings


async def test_an_alert_both_nodes_see_fires_once(
    make_settings: Callable[..., Settings],
    webhook_receiver: Receiver,
    postgres_url: str,
    nats_url: str,
    namespace: str,
) -> None:
    def node_settings(**overrides: object) -> Settings:
        return alert_settings(
            lambda **kw: make_settings(
                database_url=postgres_url,
                namespace=namespace,
                events={"url": nats_url},
                key_pepper="cluster-pepper",
                **overrides,
                **kw,
            ),
            webhook_receiver.url,
        )

    try:
        async with (
            app_client(node_settings()) as first,
            app_client(node_settings()) as second,
        ):
            nodes = [platform_of(first), platform_of(second)]
            for node in nodes:  # each node appends half of the breach
                await asyncio.gather(
                    *(predict(node, "chat", "1", latency_ms=20) for _ in range(15))
                )
                await asyncio.gather(*(predict(node, "chat", "1", error="boom") for _ in range(5)))
            await webhook_receiver.wait_for(lambda: len(webhook_receiver.requests) >= 1)
            # Both nodes follow the one log: each reports the cluster's 40 predictions.
            for client in (first, second):
                report = await report_when(client, "chat", requests_at_least("1", 40))
                assert version_of(report, "1")["requests"] == 40
                assert version_of(report, "1")["errors"] == 10
            # Both nodes keep evaluating rounds; only the leaseholder acts.
            rounds = [n.monitoring.evaluations for n in nodes]
            async with asyncio.timeout(30):
                while sum(n.monitoring.evaluations for n in nodes) < sum(rounds) + 5:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            await asyncio.sleep(0.5)
            fired = await nodes[1].events.read(
                limit=1000, where=Filter(type="meshgate.alert.fired")
            )
            assert len(fired) == 1
            assert len(webhook_receiver.requests) == 1
            assert sorted(n.monitoring.evaluations > 0 for n in nodes) == [False, True]
    finally:
        await drop_nats_stream(nats_url, namespace)


pytestmark = pytest.mark.timeout(120)


async def test_an_open_alert_is_not_fired_again_by_the_next_leaseholder(
    make_settings: Callable[..., Settings],
    webhook_receiver: Receiver,
    postgres_url: str,
    nats_url: str,
    namespace: str,
) -> None:
    def node_settings() -> Settings:
        return alert_settings(
            lambda **kw: make_settings(
                database_url=postgres_url,
                namespace=namespace,
                events={"url": nats_url},
                key_pepper="cluster-pepper",
                **kw,
            ),
            webhook_receiver.url,
        )

    nodes = [app_client(node_settings()), app_client(node_settings())]
    clients = [await node.__aenter__() for node in nodes]
    try:
        platforms = [platform_of(c) for c in clients]
        await asyncio.gather(
            *(predict(platforms[0], "chat", "1", latency_ms=20) for _ in range(15)),
            *(predict(platforms[1], "chat", "1", error="boom") for _ in range(5)),
        )
        await webhook_receiver.wait_for(lambda: len(webhook_receiver.requests) >= 1)
        # One node holds the lease and evaluates; the other stands by. The holder stops,
        # handing the lease over at once.
        (leader,) = [i for i, p in enumerate(platforms) if p.monitoring.evaluations > 0]
        standby = 1 - leader
        await nodes[leader].__aexit__(None, None, None)
        nodes.pop(leader)
        async with asyncio.timeout(30):
            while platforms[standby].monitoring.evaluations < 5:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        # The new holder knows the alert is open (from its event): nothing fires again.
        fired = await platforms[standby].events.read(where=Filter(type="meshgate.alert.fired"))
        assert len(fired) == 1 and len(webhook_receiver.requests) == 1
        report = await report_when(clients[standby], "chat", requests_at_least("1", 20))
        assert [a["id"] for a in report["alerts"]] == [fired[0].data["id"]]
    finally:
        for node in nodes:
            await node.__aexit__(None, None, None)
        await drop_nats_stream(nats_url, namespace)
