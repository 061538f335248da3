"""Tracing: spans reach a real OTLP/HTTP collector and continue the caller's W3C trace."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import Any

import httpx
import orjson
from fastapi import Request

from meshgate.app import create_app
from meshgate.config import Settings
from meshgate.gateway.middleware.tracing import TracingMiddleware
from meshgate.monitoring.tracing import span
from tests.conftest import ADMIN_KEY, Server, app_client
from tests.monitoring.conftest import Collector


def traceparent(flags: str = "01") -> tuple[str, str, str]:
    trace_id, parent = secrets.token_hex(16), secrets.token_hex(8)
    return trace_id, parent, f"00-{trace_id}-{parent}-{flags}"


def add_upstream_route(app: Any) -> None:
    """A route calling an 'upstream' the way providers do: a client span, then the headers."""

    async def call_upstream(request: Request) -> dict[str, Any]:
        with span("upstream call", kind="client", **{"meshgate.model": "m"}) as current:
            headers = request.scope["meshgate.trace"].outbound_headers()
        return {"headers": headers, "span": current is not None}

    app.add_api_route("/v1/test-upstream", call_upstream, methods=["GET"])


async def test_server_and_client_spans_continue_the_inbound_trace(
    make_settings: Callable[..., Settings], otlp_collector: Collector
) -> None:
    settings = make_settings(
        monitoring={"otlp_endpoint": otlp_collector.url, "export_delay_ms": 20}
    )
    trace_id, parent, header = traceparent()
    async with app_client(settings) as client:
        add_upstream_route(client.app)  # type: ignore[attr-defined]
        answer = (
            await client.get(
                "/v1/test-upstream", headers={"traceparent": header, "baggage": "team=ml"}
            )
        ).json()
        await otlp_collector.wait_for(lambda: len(otlp_collector.spans) >= 2)

    by_name = {s.name: s for s in otlp_collector.spans}
    server, upstream = by_name["GET /v1/test-upstream"], by_name["upstream call"]
    assert server.trace_id.hex() == trace_id == upstream.trace_id.hex()
    assert server.parent_span_id.hex() == parent
    assert upstream.parent_span_id == server.span_id
    attrs = {a.key: a.value for a in server.attributes}
    assert attrs["http.route"].string_value == "/v1/test-upstream"
    assert attrs["http.response.status_code"].int_value == 200
    assert attrs["meshgate.tenant"].string_value == "default"
    assert otlp_collector.resources[0]["service.name"] == "meshgate"
    # The upstream is told to continue under the client span, and baggage travels on.
    sent = answer["headers"]
    assert sent["traceparent"] == f"00-{trace_id}-{upstream.span_id.hex()}-01"
    assert sent["baggage"] == "team=ml"
    assert answer["span"] is True


async def test_a_new_trace_keeps_the_request_trace_id_and_an_unsampled_one_is_not_exported(
    make_settings: Callable[..., Settings], otlp_collector: Collector
) -> None:
    settings = make_settings(
        monitoring={"otlp_endpoint": otlp_collector.url, "export_delay_ms": 20}
    )
    unsampled_trace, _, unsampled = traceparent("00")
    async with app_client(settings) as client:
        add_upstream_route(client.app)  # type: ignore[attr-defined]
        quiet = (await client.get("/v1/test-upstream", headers={"traceparent": unsampled})).json()
        await client.get("/v1/whoami")
        await otlp_collector.wait_for(lambda: len(otlp_collector.spans) >= 1)
        await asyncio.sleep(0.1)

    # The caller said "not sampled": its decision is kept downstream and nothing is exported.
    assert quiet["headers"]["traceparent"].startswith(f"00-{unsampled_trace}-")
    assert quiet["headers"]["traceparent"].endswith("-00")
    assert [s.name for s in otlp_collector.spans] == ["GET /v1/whoami"]
    (whoami,) = otlp_collector.spans
    assert whoami.parent_span_id == b""
    assert whoami.trace_id.hex() != unsampled_trace


async def test_tracing_is_off_by_default_and_costs_nothing(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    app = create_app(settings)
    assert all(m.cls is not TracingMiddleware for m in app.user_middleware)
    async with app_client(settings) as client:
        add_upstream_route(client.app)  # type: ignore[attr-defined]
        answer = (await client.get("/v1/test-upstream")).json()
    assert answer["span"] is False
    assert answer["headers"]["traceparent"].startswith("00-")


async def test_a_served_request_is_traced_logged_as_json_and_flushed_at_shutdown(
    start_server: Callable[..., Server], otlp_collector: Collector
) -> None:
    # A long export delay: the spans can only arrive because shutdown flushes them.
    env = {
        "MESHGATE_MONITORING__OTLP_ENDPOINT": otlp_collector.url,
        "MESHGATE_MONITORING__EXPORT_DELAY_MS": "60000",
    }
    server = await asyncio.to_thread(start_server, env)
    trace_id, parent, header = traceparent()
    async with httpx.AsyncClient(base_url=server.url) as http:
        auth = {"Authorization": f"Bearer {ADMIN_KEY}"}
        answer = await http.get(
            "/v1/whoami", headers={**auth, "traceparent": header, "x-request-id": "req-42"}
        )
        assert answer.status_code == 200
        refused = await http.get("/v1/admin/keys", headers={"Authorization": "Bearer nope"})
        assert refused.status_code == 401
    assert await asyncio.to_thread(server.stop) in (0, -15)
    await otlp_collector.wait_for(
        lambda: any(s.name == "GET /v1/whoami" for s in otlp_collector.spans)
    )
    served = next(s for s in otlp_collector.spans if s.name == "GET /v1/whoami")
    assert served.trace_id.hex() == trace_id
    assert served.parent_span_id.hex() == parent

    text = server.log.read_text()
    lines = [orjson.loads(line) for line in text.splitlines() if line.startswith("{")]
    access = [line for line in lines if line["logger"] == "meshgate.access"]
    mine = next(line for line in access if line["request_id"] == "req-42")
    assert mine["trace_id"] == trace_id
    assert mine["tenant"] == "default"
    assert mine["route"] == "/v1/whoami"
    assert mine["status"] == 200
    assert mine["latency_ms"] > 0
    assert {"model", "version", "method", "key_id", "time", "level"} <= set(mine)
    denied = next(line for line in access if line["status"] == 401)
    assert denied["tenant"] is None
    assert len(denied["trace_id"]) == 32
    # Every line is JSON (uvicorn's own lines included), and no secret is in any of them.
    assert all(line.startswith("{") for line in text.splitlines() if line.strip())
    assert ADMIN_KEY not in text and "nope" not in text and "Bearer" not in text
    assert any("Application shutdown complete" in line["message"] for line in lines)
