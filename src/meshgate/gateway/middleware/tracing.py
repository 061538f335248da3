"""A server span per request, continuing the caller's W3C trace; installed only when on.

Sits right inside the request-context middleware: it reads the request's
``scope["meshgate.trace"]`` and replaces it with one whose outbound headers carry the current
span, so upstream calls continue this trace under our spans.
"""

from __future__ import annotations

import asyncio

from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from meshgate.core import scope as request_scope
from meshgate.monitoring.tracing import CurrentSpan, Tracing, continued
from meshgate.tracecontext import TraceContext


class TracingMiddleware:
    def __init__(self, app: ASGIApp, *, tracing: Tracing):
        self.app = app
        self.tracing = tracing

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._flushing_on_shutdown(send))
            return
        incoming: TraceContext | None = request_scope.trace(scope)
        if scope["type"] != "http" or incoming is None:
            await self.app(scope, receive, send)
            return
        method = scope["method"]
        status = 500
        tracer = self.tracing.tracer
        with (
            self.tracing.serving(incoming),
            CurrentSpan(
                tracer,
                method,
                context=self.tracing.server_context(incoming),
                kind=SpanKind.SERVER,
                attributes={
                    "http.request.method": method,
                    "url.scheme": scope.get("scheme", "http"),
                    "meshgate.request_id": request_scope.request_id(scope),
                },
            ) as span,
        ):
            request_scope.set_trace(scope, continued(incoming, span))

            async def send_traced(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                await self.app(scope, receive, send_traced)
            finally:
                if span.is_recording():
                    self._describe(span, scope, method, status)

    @staticmethod
    def _describe(span: Span, scope: Scope, method: str, status: int) -> None:
        attributes: dict[str, str | int] = {"http.response.status_code": status}
        route = getattr(scope.get("route"), "path", None)
        if route:
            span.update_name(f"{method} {route}")
            attributes["http.route"] = route
        principal = request_scope.principal(scope)
        if principal is not None:
            attributes["meshgate.tenant"] = principal.tenant
        served = request_scope.served_model(scope)
        if served is not None:
            attributes["meshgate.model"], attributes["meshgate.model_version"] = served
        span.set_attributes(attributes)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))

    def _flushing_on_shutdown(self, send: Send) -> Send:
        async def send_after_flush(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                # Export what is still queued before the process goes; off the event loop.
                await asyncio.to_thread(self.tracing.shutdown)
            await send(message)

        return send_after_flush
