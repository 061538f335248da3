"""Prediction, feedback and breaker events as the model service publishes them, and waiting
on them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from meshgate.app import Services as Platform
from meshgate.events.catalogue import BREAKER_EVENTS, BreakerState, BreakerTransition
from meshgate.events.envelope import Event


def platform_of(client: httpx.AsyncClient) -> Platform:
    platform: Platform = client.app.state.services  # type: ignore[attr-defined]
    return platform


async def predict(
    platform: Platform, model: str, version: str, *, tenant: str = "default", **data: Any
) -> Event:
    return await platform.events.publish(
        "meshgate.prediction.made",
        tenant=tenant,
        subject=f"{model}/{version}",
        data={"model": model, "version": version, **data},
    )


async def feedback(platform: Platform, prediction: Event, **data: Any) -> Event:
    return await platform.events.publish(
        "meshgate.prediction.feedback",
        tenant=prediction.tenant,
        subject=prediction.id,
        data={"prediction_id": prediction.id, **data},
    )


async def breaker(
    platform: Platform,
    model: str,
    version: str,
    state: BreakerState,
    *,
    node: str = "node-a",
    at: float | None = None,
    reset_seconds: float = 30.0,
    tenant: str = "default",
) -> Event:
    """A breaker move of ``node`` as the model service reports it."""
    moment = datetime.fromtimestamp(time.time() if at is None else at, UTC)
    report = BreakerTransition(
        tenant=tenant,
        model=model,
        version=version,
        state=state,
        node=node,
        at=moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        reset_seconds=reset_seconds,
    )
    type_ = BREAKER_EVENTS[state]
    return await platform.events.publish(
        type_.name, tenant=tenant, subject=f"{model}/{version}", data=type_.data(report)
    )


async def applied(platform: Platform) -> None:
    """Until monitoring has applied everything appended so far."""
    assert await platform.monitoring.follower.caught_up(10)


async def report_when(
    client: httpx.AsyncClient,
    name: str,
    ready: Callable[[dict[str, Any]], bool],
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """GET /v1/monitoring/models/{name} until ``ready`` says the events were handled."""
    async with asyncio.timeout(10):
        while True:
            answer = await client.get(f"/v1/monitoring/models/{name}", headers=headers)
            if answer.status_code == 200 and ready(answer.json()):
                return dict(answer.json())
            await asyncio.sleep(0.02)


def version_of(report: dict[str, Any], version: str) -> dict[str, Any]:
    return next(v for v in report["versions"] if v["version"] == version)


def requests_at_least(version: str, n: int) -> Callable[[dict[str, Any]], bool]:
    def ready(report: dict[str, Any]) -> bool:
        found = [v for v in report["versions"] if v["version"] == version]
        return bool(found) and found[0]["requests"] >= n

    return ready
