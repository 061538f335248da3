"""OpenAI-compatible routes: ``/v1/models``, ``/v1/chat/completions``, ``/v1/embeddings``.

Raw Starlette-style handlers (a ``Request`` in, a ``Response`` out): no pydantic model of the
chat body on the hot path. The request schema is documented through ``openapi_extra``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from starlette.background import BackgroundTask

from meshgate.core.routing import HotRoute, current_principal, hot_route, require
from meshgate.errors import NotFound
from meshgate.models.chat import parse_body
from meshgate.models.config import NAME
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


async def chat_completions(request: Request) -> Response:
    body = await request.body()
    parsed = parse_body(body, request.headers.get("content-type"))
    served = await service_of(request).chat.chat(
        body, parsed, await caller_of(request, parsed.get("user"))
    )
    headers = served_headers(request, str(parsed.get("model")), served)
    if served.value is not None and hasattr(served.value, "body"):
        return Response(
            served.value.body,
            media_type="application/json",
            headers=headers,
            background=BackgroundTask(served.run_after) if served.after else None,
        )
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
