"""What every request leaves behind: its RED metrics and its access-log line.

One timing and one status capture feed both. Metrics are per route template (never the raw
path: ids would explode cardinality) and, when a model answered (the model service sets
``meshgate.model`` and ``meshgate.model_version`` in the scope), per model version under the
caller's tenant.

The access line has the request id, trace id, tenant, route template, status, latency, and the
model and version when a model answered. Never a header value, body, query string or raw path
(paths can hold user ids); the key id is logged, never the key. When ``meshgate serve`` set up
JSON logging, the line is serialized here and handed straight to the log writer thread (a few
microseconds); otherwise it goes through ``logging`` as a record with the same fields.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from meshgate.core import scope as request_scope
from meshgate.monitoring.logs import LOG_CONTEXT, access_writer, timestamp
from meshgate.monitoring.metrics import Metrics

log = logging.getLogger("meshgate.access")


class ObserveMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: Metrics, access_log: bool = True):
        self.app = app
        self.metrics = metrics
        self.access_log = access_log
        self.writer = access_writer() if access_log else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_scope.request_id(scope)
        trace = request_scope.trace(scope)
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
            seconds = time.perf_counter() - started
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            principal = request_scope.principal(scope)
            tenant = principal.tenant if principal is not None else None
            served = request_scope.served_model(scope)
            name, version = served if served is not None else (None, None)
            model = None if served is None else (tenant or "", served[0], served[1])
            self.metrics.observe_request(scope["method"], route, status, seconds, model, tenant)
            if self.access_log:
                fields = {
                    "method": scope["method"],
                    "route": route,
                    "status": status,
                    "latency_ms": round(seconds * 1000, 3),
                    "tenant": tenant,
                    "key_id": principal.key_id if principal is not None else None,
                    "model": name,
                    "version": version,
                }
                self._write(request_id, trace_id, fields)
            LOG_CONTEXT.reset(token)

    def _write(self, request_id: str, trace_id: str, fields: dict[str, Any]) -> None:
        if self.writer is None:
            if log.isEnabledFor(logging.INFO):
                log.info("request", extra={"fields": fields})
            return
        line = {
            "time": timestamp(time.time()),
            "level": "info",
            "logger": "meshgate.access",
            "message": "request",
            "request_id": request_id,
            "trace_id": trace_id,
            **fields,
        }
        self.writer.write(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
