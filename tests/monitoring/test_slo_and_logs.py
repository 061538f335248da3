"""GET /v1/slo over the requests served, and the request's ids in every log line."""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from fastapi import Request, Response

from meshgate.config import Settings
from meshgate.monitoring.logs import JsonFormatter
from meshgate.monitoring.slo import RequestWindow
from tests.conftest import app_client
from tests.monitoring.helpers import platform_of


def add_slo_route(app: Any) -> None:
    async def served(request: Request, status: int, sleep: float = 0.0) -> Response:
        if sleep:
            await asyncio.sleep(sleep)
        logging.getLogger("meshgate.models").warning("upstream answered %d", status)
        return Response(status_code=status)

    app.add_api_route("/v1/test-slo/{status}", served, methods=["POST"])


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


async def test_slo_report_against_targets_over_a_window(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(monitoring={"slo": {"paths": ["/v1/test-slo/"]}})
    clock = Clock()
    async with app_client(settings) as client:
        add_slo_route(client.app)  # type: ignore[attr-defined]
        platform_of(client).metrics.slo_window.clock = clock
        empty = (await client.get("/v1/slo")).json()
        assert empty["requests"] == 0 and empty["availability"]["met"] is True

        statuses = [200] * 96 + [429, 502, 503, 503]
        await asyncio.gather(*(client.post(f"/v1/test-slo/{s}") for s in statuses))
        await client.get("/v1/whoami")  # not a covered route
        report = (await client.get("/v1/slo")).json()
        assert report["window_seconds"] == 3600 and report["requests"] == 100
        assert report["availability"] == {"value": 0.98, "target": 0.9995, "met": False}
        assert report["error_rate"] == {"value": 0.03, "target": 0.001, "met": False}
        assert report["p95_latency_ms"]["target"] == 200
        assert report["p95_latency_ms"]["value"] < 200 and report["p95_latency_ms"]["met"]
        assert report["error_budget_remaining"] == 0

        # Two slow calls in twenty: the p95 is theirs, at most 5% high.
        clock.now += 7200
        slow = [0.3, 0.3] + [0.0] * 18
        await asyncio.gather(*(client.post(f"/v1/test-slo/200?sleep={s}") for s in slow))
        recent = (await client.get("/v1/slo?window=600")).json()
        assert recent["requests"] == 20 and recent["error_rate"]["value"] == 0
        assert 300 <= recent["p95_latency_ms"]["value"] <= 600  # slack for a loaded machine
        assert recent["p95_latency_ms"]["met"] is False
        assert recent["availability"]["met"] and recent["error_budget_remaining"] == 1
        day = (await client.get("/v1/slo?window=86400")).json()
        assert day["requests"] == 120


async def test_slo_sums_every_node_and_shows_a_key_its_own_tenant_only(
    make_settings: Callable[..., Settings],
) -> None:
    # Two processes on one SQL store: each writes its buckets there, either reports the sum.
    settings = make_settings(monitoring={"slo": {"paths": ["/v1/test-slo/"]}})
    async with app_client(settings) as first, app_client(settings) as second:
        for node in (first, second):
            add_slo_route(node.app)  # type: ignore[attr-defined]
        made = await first.post("/v1/admin/keys", json={"tenant": "acme", "scopes": ["audit:read"]})
        acme = {"Authorization": f"Bearer {made.json()['key']}"}
        await asyncio.gather(*(first.post("/v1/test-slo/200") for _ in range(10)))
        await asyncio.gather(*(second.post("/v1/test-slo/503") for _ in range(5)))
        await asyncio.gather(*(second.post("/v1/test-slo/200", headers=acme) for _ in range(4)))

        async def report(node: Any, **params: str) -> dict[str, Any]:
            answer = await node.get("/v1/slo", params=params)
            assert answer.status_code == 200, answer.text
            return dict(answer.json())

        async with asyncio.timeout(10):  # each node writes its own buckets every second
            while (await report(first))["requests"] != 15:  # noqa: ASYNC110 (polls the API)
                await asyncio.sleep(0.1)
        for node in (first, second):
            ours = await report(node)
            assert (ours["tenant"], ours["requests"]) == ("default", 15)
            assert ours["availability"]["value"] == pytest.approx(10 / 15)
        theirs = (await second.get("/v1/slo", headers=acme)).json()
        assert (theirs["tenant"], theirs["requests"]) == ("acme", 4)
        assert theirs["error_rate"]["value"] == 0
        # A tenant's key cannot read another tenant's figures or the platform's.
        for other in ("default", "*"):
            denied = await first.get("/v1/slo", params={"tenant": other}, headers=acme)
            assert denied.status_code == 403, denied.text
        # The operator (an admin key of the root tenant) reads any tenant's, or every tenant's.
        assert (await report(first, tenant="acme"))["requests"] == 4
        everyone = await report(second, tenant="*")
        assert (everyone["tenant"], everyone["requests"]) == ("*", 19)
        bad = await first.get("/v1/slo", params={"tenant": "no such/tenant"})
        assert bad.status_code == 422 and "tenant" in bad.text


async def test_slo_refuses_bad_windows_and_keys_without_audit_read(
    client: Any,
) -> None:
    before = (await client.get("/v1/slo")).json()
    for bad in ("5", "abc", "40000000"):
        answer = await client.get(f"/v1/slo?window={bad}")
        assert answer.status_code == 422, bad
        assert "window" in answer.text
    # Nothing older than the retention is kept: a longer window reports the retention.
    longer = await client.get("/v1/slo?window=999999")
    assert longer.status_code == 200 and '"window_seconds":86400' in longer.text
    assert (await client.get("/v1/slo")).json() == before
    made = await client.post("/v1/admin/keys", json={"tenant": "acme", "scopes": ["inference"]})
    denied = await client.get("/v1/slo", headers={"Authorization": f"Bearer {made.json()['key']}"})
    assert denied.status_code == 403


async def test_every_log_line_of_a_request_carries_its_request_and_trace_ids(
    client: Any,
) -> None:
    add_slo_route(client.app)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("meshgate")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    try:
        await client.post(
            "/v1/test-slo/201",
            headers={
                "traceparent": f"00-{trace_id}-00f067aa0ba902b7-01",
                "x-request-id": "abc-1",
                "x-api-key": "should-not-appear",
            },
        )
        logging.getLogger("meshgate.events").info("outside any request")
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
    lines = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    domain, access, outside = lines
    assert domain["message"] == "upstream answered 201" and domain["level"] == "warning"
    assert (domain["request_id"], domain["trace_id"]) == ("abc-1", trace_id)
    assert access["logger"] == "meshgate.access"
    assert (access["request_id"], access["trace_id"]) == ("abc-1", trace_id)
    assert access["route"] == "/v1/test-slo/{status}" and access["status"] == 201
    assert access["tenant"] == "default"
    assert "request_id" not in outside and "trace_id" not in outside
    text = stream.getvalue()
    assert "should-not-appear" not in text and "Bearer" not in text


def test_the_request_window_reads_p95_at_most_5_percent_high_and_forgets_old_buckets() -> None:
    clock = Clock()
    window = RequestWindow(retention_seconds=600, clock=clock)
    for ms in range(1, 1001):
        window.observe(200, ms / 1000)
    window.observe(503, 9.0)  # failed calls count as failures, not as latency
    summary = window.summary(60)
    assert summary["requests"] == 1001 and summary["failed"] == summary["unavailable"] == 1
    assert 0.95 <= summary["p95_seconds"] <= 0.95 * 1.05
    clock.now += 120
    window.observe(200, 0.001)
    assert window.summary(60)["requests"] == 1
    assert window.summary(600)["requests"] == 1002
    clock.now += 3600  # beyond the retention: gone
    window.observe(200, 0.001)
    assert window.summary(86400)["requests"] == 1


def test_libraries_log_warnings_only_unless_asked_even_at_debug() -> None:
    from meshgate.monitoring import logs

    saved = list(logs._installed)
    logs._installed.clear()
    try:
        logs.setup_logging("debug", json_lines=False, levels={"psycopg.pool": "info"})
        for name in ("aiosqlite", "psycopg", "redis", "nats", "aiohttp", "mcp.server"):
            assert not logging.getLogger(name).isEnabledFor(logging.INFO), name
            assert logging.getLogger(name).isEnabledFor(logging.WARNING), name
        pool = logging.getLogger("psycopg.pool")
        assert pool.isEnabledFor(logging.INFO) and not pool.isEnabledFor(logging.DEBUG)
    finally:
        logs._installed[:] = saved
        logs.set_levels()
