"""Every JSON body a framework route receives has passed :func:`meshgate.strictjson.parse_json`.

The framework parses bodies with the standard library, which takes ``NaN``, repeated keys,
integers of any size and nesting until the interpreter's recursion limit. This middleware sits
behind the hot-route dispatcher (the hot routes call the strict parser themselves) and in front
of the framework's router: a body declared as JSON (or not declared at all) is read whole
(the body limit in front of it bounds that), checked, and handed on unchanged; a bad one gets
the 400 here and the route never runs. Bodies of other types go on untouched, and a route
that wants JSON answers them with a 415.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from meshgate.errors import MeshgateError
from meshgate.gateway.problems import send_error
from meshgate.strictjson import is_json_type, parse_json

WITH_BODY = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class StrictJsonMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in WITH_BODY:
            await self.app(scope, receive, send)
            return
        content_type = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value.decode("latin-1")
                break
        if not is_json_type(content_type):
            await self.app(scope, receive, send)
            return
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left before its body arrived: nobody to answer
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if body:
            try:
                parse_json(body)
            except MeshgateError as exc:
                await send_error(exc, scope, send)
                return
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
