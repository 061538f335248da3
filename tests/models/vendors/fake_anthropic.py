"""A fake Anthropic Messages API (``POST /v1/messages``) answering from the shared brain.

Wire format as Anthropic documents it: the key in ``x-api-key`` (or, as the SDK now sends
it, ``Authorization: Bearer``) and an ``anthropic-version`` header; a
Message object; with ``stream: true`` the named events message_start, content_block_start,
content_block_delta (text_delta, input_json_delta), content_block_stop, message_delta,
message_stop, with pings between; errors ``{"type": "error", "error": {...}}``.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from tests.models.vendors.brain import Answer, Ask, Turn, answer
from tests.models.vendors.fakes import FakeVendor

STOP = {"end": "end_turn", "tool": "tool_use", "length": "max_tokens"}
API_KEY = "anthropic-test-key"


def read_ask(body: dict[str, Any]) -> Ask:
    system = body.get("system")
    if isinstance(system, list):
        system = "".join(b["text"] for b in system)
    turns = []
    for m in body["messages"]:
        content = m["content"]
        if isinstance(content, str):
            turns.append(Turn(m["role"], content))
            continue
        results = [b for b in content if b["type"] == "tool_result"]
        for r in results:
            text = r["content"] if isinstance(r["content"], str) else r["content"][0]["text"]
            turns.append(Turn("tool", tool_result=text))
        if len(results) < len(content):
            text = "".join(b.get("text", "") for b in content if b["type"] == "text")
            images = sum(b["type"] == "image" for b in content)
            turns.append(Turn(m["role"], text, images))
    choice = body.get("tool_choice") or {}
    forced = choice.get("name") if choice.get("type") == "tool" else None
    tools = [t["name"] for t in body.get("tools") or ()]
    return Ask(system, turns, tools, forced, False, body["max_tokens"])


def usage_of(a: Answer) -> dict[str, Any]:
    return {
        "input_tokens": a.input_tokens,
        "output_tokens": a.output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": a.cached_tokens,
    }


def message_of(a: Answer, model: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if a.text:
        content.append({"type": "text", "text": a.text})
    if a.tool:
        call_id, name, args = a.tool
        content.append({"type": "tool_use", "id": "toolu_" + call_id, "name": name, "input": args})
    return {
        "id": "msg_fake",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": STOP[a.stop],
        "stop_sequence": None,
        "usage": usage_of(a),
    }


def event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: ".encode() + orjson.dumps({"type": name, **data}) + b"\n\n"


class FakeAnthropic(FakeVendor):
    vendor = "anthropic"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self.messages)

    def error(self, status: int, kind: str, message: str) -> web.Response:
        body = {"type": "error", "error": {"type": kind, "message": message}}
        return self.json(body, status, **{"request-id": "req_fake"})

    async def messages(self, request: web.Request) -> web.StreamResponse:
        body = await self.record(request)
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ")
        if API_KEY not in (request.headers.get("x-api-key"), bearer):
            return self.error(401, "authentication_error", "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return self.error(400, "invalid_request_error", "anthropic-version header required")
        if self.fail_status is not None:
            kind = "rate_limit_error" if self.fail_status == 429 else "overloaded_error"
            return self.error(self.fail_status, kind, f"{self.name} is failing")
        if "max_tokens" not in body:
            return self.error(400, "invalid_request_error", "max_tokens: Field required")
        a = answer(read_ask(body))
        if not body.get("stream"):
            return self.json(message_of(a, body["model"]))
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        start = {**message_of(a, body["model"]), "content": [], "stop_reason": None}
        start["usage"] = {**usage_of(a), "output_tokens": 1}
        await response.write(event("message_start", {"message": start}))
        await response.write(event("ping", {}))
        index = 0
        if a.text:
            block = {"type": "text", "text": ""}
            await response.write(event("content_block_start", {"index": 0, "content_block": block}))
            for piece in a.pieces():
                delta = {"type": "text_delta", "text": piece}
                await response.write(event("content_block_delta", {"index": 0, "delta": delta}))
            await response.write(event("content_block_stop", {"index": 0}))
            index = 1
        if a.tool:
            call_id, name, _ = a.tool
            block = {"type": "tool_use", "id": "toolu_" + call_id, "name": name, "input": {}}
            await response.write(
                event("content_block_start", {"index": index, "content_block": block})
            )
            for part in a.argument_pieces():
                delta = {"type": "input_json_delta", "partial_json": part}
                await response.write(event("content_block_delta", {"index": index, "delta": delta}))
            await response.write(event("content_block_stop", {"index": index}))
        delta = {"stop_reason": STOP[a.stop], "stop_sequence": None}
        use = {"output_tokens": a.output_tokens}
        await response.write(event("message_delta", {"delta": delta, "usage": use}))
        await response.write(event("message_stop", {}))
        await response.write_eof()
        return response
