"""``?fields=a,b.c`` on resource GETs: only the named fields come back.

Selection walks into lists, so ``fields=data.id`` keeps the id of every item of ``data``.
The response is buffered only when a GET asks for fields.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

Tree = dict[str, "Tree"]


def parse(spec: str) -> Tree:
    tree: Tree = {}
    for path in filter(None, (p.strip() for p in spec.split(","))):
        node = tree
        for part in path.split("."):
            node = node.setdefault(part, {})
    return tree


def select(value: Any, tree: Tree) -> Any:
    if not tree:
        return value
    if isinstance(value, list):
        return [select(v, tree) for v in value]
    if isinstance(value, dict):
        return {k: select(value[k], sub) for k, sub in tree.items() if k in value}
    return value


class FieldsMiddleware:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or b"fields=" not in scope["query_string"]
        ):
            await self.app(scope, receive, send)
            return
        spec = parse_qs(scope["query_string"].decode("latin-1")).get("fields", [""])[0]
        tree = parse(spec)
        start: Message | None = None
        chunks: list[bytes] = []

        async def buffered(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if start is None or message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = b"".join(chunks)
            headers = [(k, v) for k, v in start.get("headers", ()) if k != b"content-length"]
            content_type = dict(headers).get(b"content-type", b"")
            if start["status"] == 200 and content_type.startswith(b"application/json") and tree:
                body = orjson.dumps(select(orjson.loads(body), tree))
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, buffered)
