"""``POST /v1/messages``: Anthropic's Messages API in front of any registered chat model.

The request becomes a chat request, goes through the same chat flow as
``/v1/chat/completions`` (routing, context, resilience, prediction events), and the answer or
the stream comes back in Anthropic's shape. Errors are Anthropic's too (gateway/problems.py).
"""

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
from meshgate.models.translate.anthropic import chat_to_message, messages_to_chat
from meshgate.models.translate.anthropic_stream import ChatToMessageEvents

router = APIRouter(tags=["inference"])
HOT: list[HotRoute] = []

BLOCK = {
    "type": "object",
    "required": ["type"],
    "properties": {"type": {"type": "string"}},
    "additionalProperties": True,
}
MESSAGES_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["model", "max_tokens", "messages"],
                    "properties": {
                        "model": {"type": "string", "description": "A registered chat model."},
                        "max_tokens": {"type": "integer", "minimum": 1},
                        "messages": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["role", "content"],
                                "properties": {
                                    "role": {"enum": ["user", "assistant"]},
                                    "content": {
                                        "oneOf": [
                                            {"type": "string"},
                                            {"type": "array", "items": BLOCK},
                                        ]
                                    },
                                },
                            },
                        },
                        "system": {"oneOf": [{"type": "string"}, {"type": "array"}]},
                        "stream": {"type": "boolean", "default": False},
                        "tools": {"type": "array", "items": {"type": "object"}},
                        "tool_choice": {"type": "object"},
                        "stop_sequences": {"type": "array", "items": {"type": "string"}},
                        "temperature": {"type": "number"},
                        "top_p": {"type": "number"},
                        "top_k": {"type": "integer"},
                        "metadata": {"type": "object"},
                    },
                    "additionalProperties": True,
                }
            }
        },
    },
    "responses": {
        "200": {
            "description": "A Message, or its events when stream is true.",
            "content": {"application/json": {}, "text/event-stream": {}},
        }
    },
}


async def messages(request: Request) -> Response:
    raw = await request.body()
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"malformed JSON body: {exc}", code="invalid_json") from exc
    if not isinstance(parsed, dict):
        raise BadRequest("the body must be a JSON object", code="invalid_json")
    chat_request = messages_to_chat(parsed)
    model = chat_request["model"]
    served = await service_of(request).chat.chat(
        orjson.dumps(chat_request), chat_request, await caller_of(request, chat_request.get("user"))
    )
    headers = served_headers(request, model, served)
    if isinstance(served.value, Relay):
        events = ChatToMessageEvents(model, "msg_" + served.prediction_id.removeprefix("pred_"))
        return RelayResponse(_translated(served.value, events), headers)
    answer = chat_to_message(orjson.loads(served.value.body), model)
    return Response(
        orjson.dumps(answer),
        media_type="application/json",
        headers=headers,
        background=BackgroundTask(served.run_after) if served.after else None,
    )


async def _translated(relay: Relay, events: ChatToMessageEvents) -> AsyncIterator[bytes]:
    try:
        async for piece in relay:
            if out := events.feed(piece):
                yield out
        if tail := events.end():
            yield tail
    finally:
        await relay.aclose()


hot_route(
    router,
    "POST",
    "/v1/messages",
    messages,
    scope="inference",
    hot=HOT,
    summary="Messages (Anthropic-compatible; stream: true answers Anthropic's events)",
    openapi_extra=MESSAGES_SCHEMA,
)
