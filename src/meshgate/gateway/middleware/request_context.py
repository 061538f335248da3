"""Request id and W3C trace context: the first thing every request gets."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from meshgate.core import scope as request_scope
from meshgate.tracecontext import TraceContext, new_id

MAX_REQUEST_ID = 128


class RequestContextMiddleware:
    """Echoes ``x-request-id`` (or makes one) and keeps ``traceparent``/``baggage``."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = traceparent = baggage = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                request_id = value.decode("latin-1")
            elif name == b"traceparent":
                traceparent = value.decode("latin-1")
            elif name == b"baggage":
                baggage = value.decode("latin-1")
        if not request_id or len(request_id) > MAX_REQUEST_ID or not request_id.isprintable():
            request_id = new_id(128)
        request_scope.set_request_id(scope, request_id)
        request_scope.set_trace(scope, TraceContext.from_headers(traceparent, baggage))
        header = (b"x-request-id", request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        await self.app(scope, receive, send_with_id)
