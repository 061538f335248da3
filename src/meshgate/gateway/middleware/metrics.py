"""RED metrics per route template (never the raw path: ids would explode cardinality).

When a model answered (the model service sets ``meshgate.model`` and ``meshgate.model_version``
in the scope), the request also counts for that model version, under the caller's tenant.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from meshgate.gateway.middleware.auth import PRINCIPAL
from meshgate.monitoring.metrics import Metrics

MODEL = "meshgate.model"
MODEL_VERSION = "meshgate.model_version"


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, *, metrics: Metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
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
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            model = None
            name = scope.get(MODEL)
            if name is not None:
                principal = scope.get(PRINCIPAL)
                tenant = principal.tenant if principal is not None else ""
                model = (tenant, str(name), str(scope.get(MODEL_VERSION) or ""))
            self.metrics.observe_request(
                scope["method"], template, status, time.perf_counter() - started, model
            )
