"""Alerts: rules evaluated in the background, events in the log, signed webhooks on loopback."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from meshgate.app import Services as Platform
from meshgate.config import Settings
from meshgate.events.base import Filter
from meshgate.monitoring.config import AlertConfig, WebhookConfig
from meshgate.monitoring.service import MonitoringService
from meshgate.monitoring.webhooks import AlertWebhooks, verify
from tests.conftest import app_client
from tests.monitoring.conftest import Receiver
from tests.monitoring.helpers import (
    applied,
    breaker,
    feedback,
    platform_of,
    predict,
    report_when,
    version_of,
)

SECRET = "whsec-test-0123456789"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def alert_settings(
    make: Callable[..., Settings], url: str, drift: dict[str, Any] | None = None, **alerts: Any
) -> Settings:
    return make(
        monitoring={
            "drift": drift or {},
            "alerts": {
                "interval_seconds": 0.05,
                "window_seconds": 60,
                "min_requests": 10,
                "error_rate": 0.2,
                "webhooks": [{"url": url, "secret": SECRET}],
                **alerts,
            },
        }
    )


def monitoring(platform: Platform, clock: Clock) -> MonitoringService:
    service = platform.monitoring
    assert service is not None
    service.clock = clock
    return service


def delivered(receiver: Receiver, index: int) -> tuple[dict[str, str], dict[str, Any]]:
    headers, body = receiver.requests[index]
    timestamp = int(headers["Meshgate-Webhook-Timestamp"])
    assert abs(time.time() - timestamp) < 60
    # The documented scheme, computed here independently: v1= hex HMAC-SHA256 of "<ts>.<body>".
    mac = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    assert headers["Meshgate-Webhook-Signature"] == "v1=" + mac.hexdigest()
    assert verify(SECRET, timestamp, body, headers["Meshgate-Webhook-Signature"])
    assert not verify("another secret", timestamp, body, headers["Meshgate-Webhook-Signature"])
    assert headers["Content-Type"] == "application/cloudevents+json"
    return headers, orjson.loads(body)


async def alert_events(platform: Platform) -> list[Any]:
    return await platform.events.read(where=Filter(type_prefix="meshgate.alert."))


async def test_an_error_rate_alert_fires_and_resolves_with_events_and_signed_webhooks(
    make_settings: Callable[..., Settings], webhook_receiver: Receiver
) -> None:
    clock = Clock()
    settings = alert_settings(make_settings, webhook_receiver.url)
    async with app_client(settings) as client:
        platform = platform_of(client)
        service = monitoring(platform, clock)
        await asyncio.gather(*(predict(platform, "chat", "1", latency_ms=20) for _ in range(15)))
        await asyncio.gather(*(predict(platform, "chat", "1", error="boom") for _ in range(5)))
        # Nobody calls evaluate(): the background task finds the breach by itself.
        await webhook_receiver.wait_for(lambda: len(webhook_receiver.requests) >= 1)
        headers, fired = delivered(webhook_receiver, 0)
        assert fired["type"] == "meshgate.alert.fired"
        assert headers["Meshgate-Webhook-Id"] == fired["id"]
        alert = fired["data"]
        assert (alert["rule"], alert["model"], alert["version"]) == ("error_rate", "chat", "1")
        # The rate when it first crossed the threshold (evaluation runs while events arrive).
        assert 0.2 <= alert["value"] <= 0.25 and alert["threshold"] == 0.2
        assert alert["tenant"] == "default" and alert["resolved_at"] is None

        report = await client.get("/v1/monitoring/models/chat")
        assert [a["id"] for a in version_of(report.json(), "1")["alerts"]] == [alert["id"]]
        metrics = (await client.get("/metrics")).text
        assert 'meshgate_alerts_firing{rule="error_rate"} 1.0' in metrics

        # An alert fires once, however many evaluations still see the breach.
        evaluations = service.evaluations
        async with asyncio.timeout(5):
            while service.evaluations < evaluations + 3:  # noqa: ASYNC110 (polls a counter)
                await asyncio.sleep(0.02)
        assert len(webhook_receiver.requests) == 1

        # The failures age out of the window: the alert resolves.
        clock.now += 61
        await webhook_receiver.wait_for(lambda: len(webhook_receiver.requests) >= 2)
        _, resolved = delivered(webhook_receiver, 1)
        assert resolved["type"] == "meshgate.alert.resolved"
        assert resolved["data"]["id"] == alert["id"] and resolved["data"]["resolved_at"]
        events = await alert_events(platform)
        assert [(e.type, e.data["id"]) for e in events] == [
            ("meshgate.alert.fired", alert["id"]),
            ("meshgate.alert.resolved", alert["id"]),
        ]
        assert events[0].subject == "chat/1" and events[0].tenant == "default"
        assert (await client.get("/v1/monitoring/models/chat")).json()["alerts"] == []
        metrics = (await client.get("/metrics")).text
        assert 'meshgate_alerts_firing{rule="error_rate"} 0.0' in metrics


async def test_latency_accuracy_drift_and_breaker_rules(
    make_settings: Callable[..., Settings], webhook_receiver: Receiver
) -> None:
    settings = alert_settings(
        make_settings,
        webhook_receiver.url,
        interval_seconds=3600,  # evaluated by hand below, one step at a time
        p95_latency_ms=100,
        feedback_window=10,
        min_feedback=10,
        accuracy_drop=0.2,
        drift={"min_samples": 20, "reference_size": 20},
    )
    async with app_client(settings) as client:
        platform = platform_of(client)
        service = monitoring(platform, Clock())

        slow = [predict(platform, "slow", "1", latency_ms=150) for _ in range(12)]
        await asyncio.gather(*slow)
        made = [
            await predict(
                platform, "iris", "2", outputs={"label": "a"}, inputs={"x": i % 5}, latency_ms=1
            )
            for i in range(20)
        ]
        for value in (50.0, 60.0, 70.0):
            await predict(platform, "iris", "2", inputs={"x": [value] * 10}, latency_ms=1)
        for i, prediction in enumerate(made):
            # The first ten are all right (the reference), then only four in ten.
            right = i < 10 or i % 10 < 4
            await feedback(platform, prediction, label="a" if right else "b")
        await report_when(
            client, "iris", lambda r: version_of(r, "2")["accuracy"]["feedback"] == 20
        )
        await report_when(client, "slow", lambda r: version_of(r, "1")["requests"] == 12)
        await breaker(platform, "chat", "3", "open", at=service.clock())
        await applied(platform)

        fired, resolved = await service.evaluate()
        rules = {(a.rule, a.model, a.version) for a in fired}
        assert rules == {
            ("p95_latency", "slow", "1"),
            ("accuracy_drop", "iris", "2"),
            ("drift", "iris", "2"),
            ("breaker_open", "chat", "3"),
        }
        assert resolved == []
        accuracy = next(a for a in fired if a.rule == "accuracy_drop")
        assert accuracy.value == pytest.approx(0.4)

        await breaker(platform, "chat", "3", "closed", at=service.clock())
        await applied(platform)
        fired, resolved = await service.evaluate()
        assert fired == [] and [(a.rule, a.model) for a in resolved] == [("breaker_open", "chat")]

        await webhook_receiver.wait_for(lambda: len(webhook_receiver.requests) == 5)
        types = sorted(delivered(webhook_receiver, i)[1]["type"] for i in range(5))
        assert types == ["meshgate.alert.fired"] * 4 + ["meshgate.alert.resolved"]


async def test_a_failing_webhook_is_retried_with_the_same_id_then_given_up(
    make_settings: Callable[..., Settings], webhook_receiver: Receiver
) -> None:
    settings = alert_settings(
        make_settings, webhook_receiver.url, interval_seconds=3600, webhook_attempts=3
    )
    webhook_receiver.status = 500
    async with app_client(settings) as client:
        platform = platform_of(client)
        service = monitoring(platform, Clock())
        delays: list[float] = []

        async def no_wait(seconds: float) -> None:
            delays.append(seconds)

        service.webhooks.sleep = no_wait
        await breaker(platform, "chat", "1", "open", at=service.clock())
        await applied(platform)
        (alert,), _ = await service.evaluate()
        await service.webhooks.drain()

    assert len(webhook_receiver.requests) == 3
    ids = {headers["Meshgate-Webhook-Id"] for headers, _ in webhook_receiver.requests}
    assert len(ids) == 1
    assert service.webhooks.failed == 1 and service.webhooks.delivered == 0
    assert len(delays) == 2 and delays[1] > 0
    # The alert itself is still in the event log, whatever the receiver did.
    assert delivered(webhook_receiver, 0)[1]["data"]["id"] == alert.id


async def test_webhook_settings_are_validated(make_settings: Callable[..., Settings]) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="secret"):
        make_settings(monitoring={"alerts": {"webhooks": [{"url": "http://x/hook"}]}})
    with pytest.raises(ValidationError, match="interval_seconds"):
        make_settings(monitoring={"alerts": {"interval_seconds": 0}})
    settings = make_settings(
        monitoring={"alerts": {"webhooks": [{"url": "http://x/hook", "secret": SECRET}]}}
    )
    assert SECRET not in repr(settings) and SECRET not in str(settings.model_dump())


async def test_thresholds_per_model_override_the_defaults(
    make_settings: Callable[..., Settings], webhook_receiver: Receiver
) -> None:
    settings = alert_settings(
        make_settings,
        webhook_receiver.url,
        interval_seconds=3600,
        p95_latency_ms=100,
        models={"chat": {"p95_latency_ms": 1000}},
    )
    async with app_client(settings) as client:
        platform = platform_of(client)
        service = monitoring(platform, Clock())
        for model in ("chat", "classifier"):
            await asyncio.gather(
                *(predict(platform, model, "1", latency_ms=150) for _ in range(12))
            )
            await report_when(client, model, lambda r: version_of(r, "1")["requests"] == 12)
        fired, _ = await service.evaluate()
    assert [(a.rule, a.model, a.threshold) for a in fired] == [("p95_latency", "classifier", 100)]

    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="p99_latency_ms"):
        make_settings(monitoring={"alerts": {"models": {"chat": {"p99_latency_ms": 5}}}})


async def test_a_closing_node_finishes_sending_the_alert_it_has_just_fired(
    webhook_receiver: Receiver,
) -> None:
    # Nothing sends a fired alert's webhook again, so a node that stops right after firing
    # waits (a bounded while) for the receiver's answer instead of cutting the delivery.
    webhook_receiver.delay = 0.5
    hook = WebhookConfig(url=webhook_receiver.url, secret="s" * 16)  # type: ignore[arg-type]
    hooks = AlertWebhooks(AlertConfig(webhooks=[hook]))
    hooks.send("evt-1", {"id": "evt-1", "type": "meshgate.alert.fired"})
    await hooks.close()
    assert (hooks.delivered, hooks.failed) == (1, 0)
