"""``POST /v1/completions``: OpenAI's legacy completions, answered by any chat model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from starlette.background import BackgroundTask

from meshgate.core.routing import HotRoute, hot_route
from meshgate.errors import BadRequest
from meshgate.models.inference import Relay
from meshgate.models.routes.common import RelayResponse, caller_of, served_headers, service_of
from meshgate.models.translate.completions import (
    ChatToCompletionChunks,
    completion_of,
    completions_to_chat,
)

router = APIRouter(tags=["inference"])
HOT: list[HotRoute] = []

COMPLETIONS_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["model", "prompt"],
                    "properties": {
                        "model": {"type": "string", "description": "A registered chat model."},
                        "prompt": {"type": "string"},
                        "max_tokens": {"type": "integer", "minimum": 1},
                        "stream": {"type": "boolean", "default": False},
                        "stop": {"oneOf": [{"type": "string"}, {"type": "array"}]},
                        "temperature": {"type": "number"},
                    },
                    "additionalProperties": True,
                }
            }
        },
    }
}


async def completions(request: Request) -> Response:
    try:
        parsed = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"malformed JSON body: {exc}", code="invalid_json") from exc
    if not isinstance(parsed, dict):
        raise BadRequest("the body must be a JSON object", code="invalid_json")
    chat_request = completions_to_chat(parsed)
    model = chat_request["model"]
    served = await service_of(request).chat.chat(
        orjson.dumps(chat_request), chat_request, await caller_of(request, chat_request.get("user"))
    )
    headers = served_headers(request, model, served)
    if isinstance(served.value, Relay):
        include_usage = bool((parsed.get("stream_options") or {}).get("include_usage"))
        chunks = ChatToCompletionChunks(model, "cmpl-" + served.prediction_id, include_usage)
        return RelayResponse(_translated(served.value, chunks), headers)
    return Response(
        orjson.dumps(completion_of(orjson.loads(served.value.body), model)),
        media_type="application/json",
        headers=headers,
        background=BackgroundTask(served.run_after) if served.after else None,
    )


async def _translated(relay: Relay, chunks: ChatToCompletionChunks) -> AsyncIterator[bytes]:
    try:
        async for piece in relay:
            if out := chunks.feed(piece):
                yield out
    finally:
        await relay.aclose()


hot_route(
    router,
    "POST",
    "/v1/completions",
    completions,
    scope="inference",
    hot=HOT,
    summary="Legacy completions (OpenAI-compatible), answered by a chat model",
    openapi_extra=COMPLETIONS_SCHEMA,
)
