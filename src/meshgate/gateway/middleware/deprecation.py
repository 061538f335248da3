"""``Deprecation`` and ``Sunset`` headers on routes declared deprecated.

A route opts in with ``deprecated=True`` and ``openapi_extra={"x-sunset": "YYYY-MM-DD"}``;
the headers follow RFC 9745 and RFC 8594.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def headers_for(route: object) -> list[tuple[bytes, bytes]]:
    if not getattr(route, "deprecated", False):
        return []
    extra = getattr(route, "openapi_extra", None) or {}
    headers = [(b"deprecation", b"true")]
    if sunset := extra.get("x-sunset"):
        when = datetime.fromisoformat(sunset).replace(tzinfo=UTC)
        headers.append((b"sunset", format_datetime(when, usegmt=True).encode()))
    if successor := extra.get("x-successor"):
        headers.append((b"link", f'<{successor}>; rel="successor-version"'.encode()))
    return headers


class DeprecationMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app
        self._cache: dict[int, list[tuple[bytes, bytes]]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_notice(message: Message) -> None:
            if message["type"] == "http.response.start" and (route := scope.get("route")):
                key = id(route)
                extra = self._cache.get(key)
                if extra is None:
                    extra = self._cache[key] = headers_for(route)
                if extra:
                    message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, send_with_notice)
