"""Refuses request bodies over the configured size with 413, declared or streamed."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from meshgate.errors import PayloadTooLarge
from meshgate.gateway.problems import send_error


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunked = False
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.max_bytes:
                    await send_error(self._error(), scope, send)
                    return
                break
            if name == b"transfer-encoding":
                chunked = True
        else:
            # HTTP/1.1: no Content-Length and no Transfer-Encoding means no body at all.
            if chunked:
                await self._streamed(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _streamed(self, scope: Scope, receive: Receive, send: Send) -> None:
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
                if seen > self.max_bytes:
                    refused = True
                    await send_error(self._error(), scope, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        await self.app(scope, counted, guarded_send)

    def _error(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"request body exceeds the limit of {self.max_bytes} bytes")
