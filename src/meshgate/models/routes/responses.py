"""``POST /v1/responses`` and ``GET /v1/responses/{id}``: OpenAI's Responses API.

Any registered chat model answers through the chat flow; the conversation a
``previous_response_id`` continues is kept in the Context Mesh (models/responses_state.py).
Errors are OpenAI's shape (gateway/problems.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from starlette.background import BackgroundTask

from meshgate.context.service import ContextService
from meshgate.core.routing import HotRoute, current_principal, hot_route
from meshgate.core.state import service_of as registered
from meshgate.errors import BadRequest
from meshgate.models.inference import Caller, Relay
from meshgate.models.responses_state import ResponseState
from meshgate.models.routes.common import RelayResponse, caller_of, served_headers, service_of
from meshgate.models.translate.responses import (
    ChatToResponseEvents,
    input_messages,
    output_of,
    reply_message,
    response_object,
    responses_to_chat,
)

router = APIRouter(tags=["inference"])
HOT: list[HotRoute] = []
Json = dict[str, Any]

RESPONSES_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["model", "input"],
                    "properties": {
                        "model": {"type": "string", "description": "A registered chat model."},
                        "input": {
                            "oneOf": [
                                {"type": "string"},
                                {"type": "array", "items": {"type": "object"}},
                            ]
                        },
                        "instructions": {"type": "string"},
                        "previous_response_id": {"type": "string"},
                        "stream": {"type": "boolean", "default": False},
                        "store": {"type": "boolean", "default": True},
                        "tools": {"type": "array", "items": {"type": "object"}},
                        "tool_choice": {"oneOf": [{"type": "string"}, {"type": "object"}]},
                        "text": {"type": "object"},
                        "max_output_tokens": {"type": "integer", "minimum": 1},
                        "temperature": {"type": "number"},
                        "top_p": {"type": "number"},
                    },
                    "additionalProperties": True,
                }
            }
        },
    },
    "responses": {
        "200": {
            "description": "A Response, or its events when stream is true.",
            "content": {"application/json": {}, "text/event-stream": {}},
        }
    },
}


def state_of(request: Request) -> ResponseState:
    return ResponseState(registered(request, ContextService))


async def create_response(request: Request) -> Response:
    try:
        parsed = orjson.loads(await request.body())
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"malformed JSON body: {exc}", code="invalid_json") from exc
    if not isinstance(parsed, dict):
        raise BadRequest("the body must be a JSON object", code="invalid_json")
    if "stream" in parsed and not isinstance(parsed["stream"], bool):
        raise BadRequest("'stream' must be true or false", param="stream")
    new = input_messages(parsed)
    caller = await caller_of(request, parsed.get("user"))
    state = state_of(request)
    previous = parsed.get("previous_response_id")
    session_id: str | None = None
    parent: str | None = None
    history: list[Json] = []
    if isinstance(previous, str):
        session_id, parent, history = await state.history(caller.tenant, previous)
    elif previous is not None:
        raise BadRequest("'previous_response_id' must be a string", param="previous_response_id")
    chat_request = responses_to_chat(parsed, history, new)
    store = parsed.get("store", True) is not False
    if store and session_id is None:
        principal = current_principal(request)
        session_id = await state.open(caller.tenant, caller.user_id, f"key:{principal.key_id}")
    response_id = state.new_id(session_id if store else None)
    kept = new[1:] if isinstance(parsed.get("instructions"), str) else new
    served = await service_of(request).chat.chat(orjson.dumps(chat_request), chat_request, caller)
    headers = served_headers(request, chat_request["model"], served)
    saver = Saver(state, caller, response_id, parent, kept) if store else None
    if isinstance(served.value, Relay):
        events = ChatToResponseEvents(response_id, parsed)
        return RelayResponse(_translated(served.value, events, saver), headers)
    answer = orjson.loads(served.value.body)
    choice = (answer.get("choices") or [{}])[0]
    output = output_of(choice.get("message") or {}, "msg_" + response_id.removeprefix("resp_"))
    response = response_object(
        response_id, parsed, output, choice.get("finish_reason"), answer.get("usage")
    )
    if saver is not None:
        await saver.save(response)
    return Response(
        orjson.dumps(response),
        media_type="application/json",
        headers=headers,
        background=BackgroundTask(served.run_after) if served.after else None,
    )


class Saver:
    """Keeps a finished response in its conversation."""

    def __init__(
        self,
        state: ResponseState,
        caller: Caller,
        response_id: str,
        parent: str | None,
        new: list[Json],
    ):
        self.state, self.caller, self.response_id = state, caller, response_id
        self.parent, self.new = parent, new

    async def save(self, response: Json) -> None:
        reply = reply_message(response["output"])
        await self.state.save(
            self.caller.tenant, self.response_id, self.parent, self.new, reply, response
        )


async def _translated(
    relay: Relay, events: ChatToResponseEvents, saver: Saver | None
) -> AsyncIterator[bytes]:
    try:
        yield events.start()
        async for piece in relay:
            if out := events.feed(piece):
                yield out
        tail = events.end()
        if saver is not None and events.final is not None:
            # Kept before the client hears "completed", so a follow-up at once finds it.
            await saver.save(events.final)
        yield tail
    finally:
        await relay.aclose()


async def get_response(request: Request) -> Response:
    response_id = request.scope["path_params"]["response_id"]
    tenant = current_principal(request).tenant
    found = await state_of(request).get(tenant, response_id)
    return Response(orjson.dumps(found), media_type="application/json")


hot_route(
    router,
    "POST",
    "/v1/responses",
    create_response,
    scope="inference",
    hot=HOT,
    summary="Create a response (OpenAI Responses API; stream: true answers its events)",
    openapi_extra=RESPONSES_SCHEMA,
)
hot_route(
    router,
    "GET",
    "/v1/responses/{response_id}",
    get_response,
    scope="inference",
    hot=HOT,
    summary="A stored response (tenant-scoped; kept in the Context Mesh)",
    openapi_extra={
        "responses": {
            "200": {"description": "The Response object.", "content": {"application/json": {}}}
        }
    },
)
