"""OpenAI-compatible routes: ``/v1/models``, ``/v1/chat/completions``, ``/v1/embeddings``.

Raw Starlette-style handlers (a ``Request`` in, a ``Response`` out): no pydantic model of the
chat body on the hot path. The request schema is documented through ``openapi_extra``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect
from starlette.types import Receive, Scope, Send

from meshgate.core.routing import HotRoute, current_principal, hot_route, require
from meshgate.errors import NotFound
from meshgate.models.chat import parse_body
from meshgate.models.config import NAME
from meshgate.models.inference import Served
from meshgate.models.routes.common import RelayResponse, caller_of, served_headers, service_of

router = APIRouter(tags=["inference"])
HOT: list[HotRoute] = []

CHAT_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["model", "messages"],
                    "properties": {
                        "model": {
                            "type": "string",
                            "minLength": 1,
                            "description": "A registered chat model.",
                        },
                        "messages": {"type": "array", "items": {"type": "object"}},
                        "stream": {"type": "boolean", "default": False},
                        "user": {"type": "string", "description": "End user (context)."},
                    },
                    "additionalProperties": True,
                }
            }
        },
    },
    "parameters": [
        {"name": h, "in": "header", "required": False, "schema": {"type": "string"}}
        for h in ("x-user-id", "x-session-id", "x-model-version")
    ],
}
EMBEDDINGS_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["model", "input"],
                    "properties": {
                        "model": {"type": "string", "minLength": 1},
                        "input": {"oneOf": [{"type": "string"}, {"type": "array"}]},
                    },
                }
            }
        },
    }
}


@router.get(
    "/v1/models",
    dependencies=[require("inference")],
    summary="The models this key may call (OpenAI list shape)",
)
async def list_models(request: Request) -> dict[str, Any]:
    principal = current_principal(request)
    tenant = principal.tenant
    models = await service_of(request).registry.model_names(tenant)
    models = [m for m in models if principal.may_call(m[0])]
    return {
        "object": "list",
        "data": [
            {
                "id": name,
                "object": "model",
                "created": int(datetime.fromisoformat(created).timestamp()),
                "owned_by": tenant,
                "task": task,
            }
            for name, task, created in models
        ],
    }


@router.get(
    "/v1/models/{name}",
    dependencies=[require("inference")],
    summary="One model this key may call (OpenAI model shape)",
)
async def retrieve_model(
    name: Annotated[str, Path(pattern=NAME, description="Model name.")], request: Request
) -> dict[str, Any]:
    tenant = current_principal(request).tenant
    for model, task, created in await service_of(request).registry.model_names(tenant):
        if model == name:
            return {
                "id": model,
                "object": "model",
                "created": int(datetime.fromisoformat(created).timestamp()),
                "owned_by": tenant,
                "task": task,
            }
    raise NotFound(f"The model {name!r} does not exist", code="model_not_found", param="model")


async def read_body(request: Request) -> bytes:
    """The request body, read straight from the ASGI messages (what ``request.body()`` does,
    without its stream generator), and kept on the request as that would."""
    chunks: list[bytes] = []
    receive = request.receive
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
    request._body = body
    return body


def content_type(scope: Scope) -> str | None:
    name: bytes
    value: bytes
    for name, value in scope["headers"]:
        if name == b"content-type":
            return value.decode("latin-1")
    return None


class JsonAnswer(Response):
    """A served JSON answer, then the steps left for after it (token charging, shadows).

    The same messages and headers as ``Response(body, media_type="application/json",
    background=BackgroundTask(served.run_after))``, built directly: that spelling renders the
    headers through a mapping and inspects the callable on every request.
    """

    def __init__(self, body: bytes, headers: dict[str, str], served: Served | None):
        self.body = body
        self.status_code = 200
        self.background = None
        self.served = served
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        raw.append((b"content-length", str(len(body)).encode("latin-1")))
        raw.append((b"content-type", b"application/json"))
        self.raw_headers = raw

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        await send({"type": "http.response.body", "body": self.body})
        if self.served is not None:
            await self.served.run_after()


async def chat_completions(request: Request) -> Response:
    body = await read_body(request)
    parsed = parse_body(body, content_type(request.scope))
    served = await service_of(request).chat.chat(
        body, parsed, await caller_of(request, parsed.get("user"))
    )
    headers = served_headers(request, str(parsed.get("model")), served)
    if served.value is not None and hasattr(served.value, "body"):
        return JsonAnswer(served.value.body, headers, served if served.after else None)
    return RelayResponse(served.value, headers)


async def embeddings(request: Request) -> Response:
    body = await request.body()
    parsed = parse_body(body, request.headers.get("content-type"))
    served = await service_of(request).chat.embeddings(
        body, parsed, await caller_of(request, parsed.get("user"))
    )
    return Response(
        served.value.body,
        media_type="application/json",
        headers=served_headers(request, str(parsed.get("model")), served),
        background=BackgroundTask(served.run_after) if served.after else None,
    )


hot_route(
    router,
    "POST",
    "/v1/chat/completions",
    chat_completions,
    scope="inference",
    hot=HOT,
    summary="Chat completion (OpenAI-compatible; stream: true answers server-sent events)",
    openapi_extra=CHAT_SCHEMA,
)
hot_route(
    router,
    "POST",
    "/v1/embeddings",
    embeddings,
    scope="inference",
    hot=HOT,
    summary="Embeddings (OpenAI-compatible)",
    openapi_extra=EMBEDDINGS_SCHEMA,
)
