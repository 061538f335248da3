"""GET /metrics, read with the real Prometheus text parser."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from fastapi import Request, Response
from prometheus_client.parser import text_string_to_metric_families

from meshgate.app import Services as Platform


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(found: dict, name: str, **labels: str) -> float | None:
    return found.get((name, frozenset(labels.items())))


async def scrape(client: httpx.AsyncClient) -> dict:
    answer = await client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return samples(answer.text)


async def new_key(client: httpx.AsyncClient, tenant: str, scopes: list[str], **limits: Any) -> str:
    made = await client.post("/v1/admin/keys", json={"tenant": tenant, "scopes": scopes, **limits})
    assert made.status_code == 201, made.text
    return str(made.json()["key"])


def add_model_route(app: Any) -> None:
    """Answers like an inference route: names the model version in the scope, as models do."""

    async def infer(request: Request, status: int) -> Response:
        request.scope["meshgate.model"] = "iris"
        request.scope["meshgate.model_version"] = "2"
        return Response(status_code=status)

    app.add_api_route("/v1/test-model/{status}", infer, methods=["POST"])


async def test_routes_and_model_versions_have_red_metrics(client: httpx.AsyncClient) -> None:
    add_model_route(client.app)  # type: ignore[attr-defined]
    for status in (200, 200, 502, 504, 400):
        assert (await client.post(f"/v1/test-model/{status}")).status_code == status
    await client.get("/v1/whoami")
    found = await scrape(client)

    model = {"tenant": "default", "model": "iris", "version": "2"}
    assert value(found, "meshgate_model_requests_total", **model, outcome="ok") == 2
    assert value(found, "meshgate_model_requests_total", **model, outcome="upstream_error") == 1
    assert value(found, "meshgate_model_requests_total", **model, outcome="upstream_timeout") == 1
    assert value(found, "meshgate_model_requests_total", **model, outcome="client_error") == 1
    assert value(found, "meshgate_model_request_duration_seconds_count", **model) == 5
    route = "/v1/test-model/{status}"
    assert value(found, "meshgate_http_requests_total", method="POST", route=route, status="502")
    whoami = {"method": "GET", "route": "/v1/whoami", "status": "200"}
    assert value(found, "meshgate_http_requests_total", **whoami) == 1
    # A request that named no model counts for its route only.
    models = {dict(labels).get("model") for name, labels in found if "model_requests" in name}
    assert models == {"iris"}


async def test_rate_limit_rejections_are_counted_per_tenant(client: httpx.AsyncClient) -> None:
    key = await new_key(client, "acme", ["inference"], rpm=1)
    auth = {"Authorization": f"Bearer {key}"}
    assert (await client.get("/v1/whoami", headers=auth)).status_code == 200
    assert (await client.get("/v1/whoami", headers=auth)).status_code == 429
    assert (await client.get("/v1/whoami", headers=auth)).status_code == 429
    found = await scrape(client)
    assert value(found, "meshgate_rate_limited_total", tenant="acme") == 2
    assert value(found, "meshgate_rate_limited_total", tenant="default") is None


async def test_breakers_backends_predictions_and_event_lag_are_exposed(
    client: httpx.AsyncClient,
) -> None:
    platform: Platform = client.app.state.services  # type: ignore[attr-defined]
    platform.metrics.set_breaker("default", "chat", "1", "open")
    platform.metrics.set_breaker("default", "chat", "2", "half_open")
    assert (await client.get("/readyz")).status_code == 200
    for latency in (5, 7, 9):
        await platform.events.publish(
            "meshgate.prediction.made",
            tenant="default",
            data={"model": "chat", "version": "1", "latency_ms": latency},
        )
    await platform.events.publish(
        "meshgate.prediction.made",
        tenant="default",
        data={"model": "chat", "version": "1", "error": "upstream timed out"},
    )
    version = {"tenant": "default", "model": "chat", "version": "1"}
    async with asyncio.timeout(5):
        while True:
            found = await scrape(client)
            if value(found, "meshgate_predictions_total", **version, outcome="server_error"):
                break
            await asyncio.sleep(0.02)

    assert value(found, "meshgate_breaker_state", **version) == 2
    assert value(found, "meshgate_breaker_state", tenant="default", model="chat", version="2") == 1
    assert value(found, "meshgate_backend_up", backend="sql") == 1
    assert value(found, "meshgate_backend_up", backend="events") == 1
    assert value(found, "meshgate_predictions_total", **version, outcome="ok") == 3
    assert value(found, "meshgate_prediction_latency_seconds_count", **version) == 3
    assert value(found, "meshgate_prediction_latency_seconds_sum", **version) == 0.021
    lag = value(found, "meshgate_event_lag_seconds", consumer="monitoring")
    assert lag is not None and 0 <= lag < 5


async def test_metrics_need_the_operator(client: httpx.AsyncClient) -> None:
    key = await new_key(client, "acme", ["inference"])
    answer = await client.get("/metrics", headers={"Authorization": f"Bearer {key}"})
    assert answer.status_code == 403
    assert "admin" in answer.json()["detail"]
    assert (await client.get("/metrics", headers={"Authorization": ""})).status_code == 401
