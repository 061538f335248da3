"""A fake OpenAI chat completions server answering from the shared brain.

Azure OpenAI speaks the same body on other paths, with an ``api-key`` header and its own
error shape: :class:`FakeAzure` is this server on Azure's paths.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from tests.models.vendors.brain import Answer, Ask, Turn, answer
from tests.models.vendors.fakes import FakeVendor

FINISH = {"end": "stop", "tool": "tool_calls", "length": "length"}


def read_ask(body: dict[str, Any]) -> Ask:
    system, turns = None, []
    for m in body["messages"]:
        content = m.get("content")
        if m["role"] in ("system", "developer"):
            system = content if isinstance(content, str) else content[0]["text"]
        elif m["role"] == "tool":
            turns.append(Turn("tool", tool_result=content))
        elif isinstance(content, list):
            text = "".join(p.get("text", "") for p in content if p["type"] == "text")
            images = sum(p["type"] == "image_url" for p in content)
            turns.append(Turn(m["role"], text, images))
        else:
            turns.append(Turn(m["role"], content or ""))
    tools = [t["function"]["name"] for t in body.get("tools") or ()]
    fmt = (body.get("response_format") or {}).get("type")
    return Ask(
        system,
        turns,
        tools,
        None,
        fmt in ("json_object", "json_schema"),
        body.get("max_completion_tokens", body.get("max_tokens")),
    )


def usage_of(a: Answer) -> dict[str, Any]:
    return {
        "prompt_tokens": a.input_tokens + a.cached_tokens,
        "completion_tokens": a.output_tokens,
        "total_tokens": a.input_tokens + a.cached_tokens + a.output_tokens,
        "prompt_tokens_details": {"cached_tokens": a.cached_tokens},
    }


def completion_of(a: Answer, model: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": a.text}
    if a.tool:
        call_id, name, args = a.tool
        message["tool_calls"] = [
            {
                "id": call_id,
                "type": "function",
                "function": {"name": name, "arguments": orjson.dumps(args).decode()},
            }
        ]
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": FINISH[a.stop]}],
        "usage": usage_of(a),
    }


def chunk(model: str, delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
    event = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }
    return b"data: " + orjson.dumps(event) + b"\n\n"


class FakeOpenAIWire(FakeVendor):
    vendor = "openai"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/chat/completions", self.chat)

    def error(self, status: int, message: str) -> web.Response:
        kind = "rate_limit_exceeded" if status == 429 else "server_error"
        return self.json(
            {"error": {"message": message, "type": kind, "code": kind, "param": None}}, status
        )

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await self.record(request)
        if self.fail_status is not None:
            return self.error(self.fail_status, f"{self.name} is failing")
        a = answer(read_ask(body))
        model = body.get("model") or "deployment"
        if not body.get("stream"):
            return self.json(completion_of(a, model))
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        await response.write(chunk(model, {"role": "assistant", "content": ""}))
        for piece in a.pieces():
            await response.write(chunk(model, {"content": piece}))
        if a.tool:
            call_id, name, _ = a.tool
            first = {
                "index": 0,
                "id": call_id,
                "type": "function",
                "function": {"name": name, "arguments": ""},
            }
            await response.write(chunk(model, {"tool_calls": [first]}))
            for part in a.argument_pieces():
                delta = {"tool_calls": [{"index": 0, "function": {"arguments": part}}]}
                await response.write(chunk(model, delta))
        await response.write(chunk(model, {}, FINISH[a.stop]))
        if (body.get("stream_options") or {}).get("include_usage"):
            event = {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": model,
                "choices": [],
                "usage": usage_of(a),
            }
            await response.write(b"data: " + orjson.dumps(event) + b"\n\n")
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response


class FakeAzure(FakeOpenAIWire):
    """Azure OpenAI: ``/openai/deployments/{deployment}/chat/completions?api-version=``."""

    vendor = "azure_openai"
    api_key = "azure-test-key"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self.azure_chat)

    def error(self, status: int, message: str) -> web.Response:
        # Azure's own shape: a string code, no type.
        return self.json({"error": {"code": str(status), "message": message}}, status)

    async def azure_chat(self, request: web.Request) -> web.StreamResponse:
        if not request.query.get("api-version"):
            await self.record(request)
            return self.json({"error": {"code": "404", "message": "Resource not found"}}, 404)
        if request.headers.get("api-key") != self.api_key:
            await self.record(request)
            return self.json(
                {
                    "error": {
                        "code": "401",
                        "message": "Access denied due to invalid subscription key.",
                    }
                },
                401,
            )
        return await self.chat(request)
