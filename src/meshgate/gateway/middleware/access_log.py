"""One JSON line per request on the ``meshgate.access`` logger.

The line has the request id, trace id, tenant, route template, status, latency, and the model
and version when a model answered. Never a header value, body, query string or raw path (paths
can hold user ids); the key id is logged, never the key.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from meshgate.gateway.middleware.auth import PRINCIPAL
from meshgate.gateway.middleware.metrics import MODEL, MODEL_VERSION
from meshgate.monitoring.logs import LOG_CONTEXT
from meshgate.tracecontext import SCOPE_KEY

log = logging.getLogger("meshgate.access")


class AccessLogMiddleware:
    def __init__(self, app: ASGIApp, *, enabled: bool = True):
        self.app = app
        self.enabled = enabled

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = scope.get("meshgate.request_id", "")
        trace = scope.get(SCOPE_KEY)
        trace_id = trace.trace_id if trace is not None else ""
        token = LOG_CONTEXT.set((request_id, trace_id))
        started = time.perf_counter()
        status = 500

        async def send_observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_observed)
        finally:
            if self.enabled and log.isEnabledFor(logging.INFO):
                self._line(scope, status, time.perf_counter() - started)
            LOG_CONTEXT.reset(token)

    @staticmethod
    def _line(scope: Scope, status: int, seconds: float) -> None:
        principal = scope.get(PRINCIPAL)
        fields = {
            "method": scope["method"],
            "route": getattr(scope.get("route"), "path", None) or "unmatched",
            "status": status,
            "latency_ms": round(seconds * 1000, 3),
            "tenant": principal.tenant if principal is not None else None,
            "key_id": principal.key_id if principal is not None else None,
            "model": scope.get(MODEL),
            "version": scope.get(MODEL_VERSION),
        }
        log.info("request", extra={"fields": fields})
