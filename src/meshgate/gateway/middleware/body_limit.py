"""Refuses request bodies over the configured size with 413, declared or streamed.

One limit holds for every route (``max_bytes``), except the few routes given their own
(``routes``: method, path template, limit), such as the upload of a model archive.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from meshgate.errors import PayloadTooLarge
from meshgate.gateway.problems import send_error

RouteLimit = tuple[str, str, int]
"""(method, path template such as ``/v1/things/{id}/upload``, largest body in bytes)"""


def _compiled(limit: RouteLimit) -> tuple[str, str, re.Pattern[str], int]:
    method, template, max_bytes = limit
    pattern = re.sub(r"\\\{[^/]*?\\\}", "[^/]+", re.escape(template))
    # The literal start of the template: a cheap test before the pattern.
    return method, template.split("{", 1)[0], re.compile(f"^{pattern}$"), max_bytes


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int, routes: Iterable[RouteLimit] = ()):
        self.app = app
        self.max_bytes = max_bytes
        self.routes = [_compiled(r) for r in routes]

    def _limit(self, scope: Scope) -> int:
        path = scope["path"]
        for method, prefix, pattern, max_bytes in self.routes:
            if scope["method"] == method and path.startswith(prefix) and pattern.match(path):
                return max_bytes
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope) if self.routes else self.max_bytes
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > limit:
                    await send_error(self._error(limit), scope, send)
                    return
                break
            if name == b"transfer-encoding":
                chunked = True
        else:
            # HTTP/1.1: no Content-Length and no Transfer-Encoding means no body at all.
            if chunked:
                await self._streamed(scope, receive, send, limit)
                return
        await self.app(scope, receive, send)

    async def _streamed(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        """A body without a declared length is counted as it arrives.

        Past the limit the 413 is sent here and the app sees the client go away, since the
        framework would turn an exception raised while it reads the body into a 400.
        """
        seen = 0
        refused = False

        async def counted() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    refused = True
                    await send_error(self._error(limit), scope, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, counted, guarded_send)

    @staticmethod
    def _error(limit: int) -> PayloadTooLarge:
        return PayloadTooLarge(f"request body exceeds the limit of {limit} bytes")
