"""The neutral shape every translation goes through: OpenAI's chat completions.

Inbound routes (Anthropic Messages, Responses, legacy completions) turn their requests into a
chat request and the chat answer back into their own shape; vendor providers (Anthropic,
Gemini, Azure, Bedrock) turn a chat request into their vendor's and the vendor's answer into a
chat answer. Everything here is pure: dicts and bytes in, dicts and bytes out.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any, Literal, TypedDict

import orjson

from meshgate.errors import BadRequest

Json = dict[str, Any]
Finish = Literal["stop", "length", "tool_calls", "content_filter"]


class Usage(TypedDict):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: dict[str, int]


class ToolCall(TypedDict):
    id: str
    type: Literal["function"]
    function: dict[str, str]


class Unsupported(BadRequest):
    """A feature the chosen vendor lacks: refused by name, never dropped silently."""

    def __init__(self, vendor: str, feature: str, param: str):
        super().__init__(
            f"{vendor} does not support {feature}", code="unsupported_feature", param=param
        )


def tool_call(id_: str, name: str, arguments: Any) -> ToolCall:
    """A chat tool call; ``arguments`` already parsed (a dict) or JSON text."""
    text = arguments if isinstance(arguments, str) else orjson.dumps(arguments or {}).decode()
    return {"id": id_, "type": "function", "function": {"name": name, "arguments": text}}


def usage(prompt: int, completion: int, cached: int = 0) -> Usage:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def cached_tokens(u: Json | None) -> int:
    details = (u or {}).get("prompt_tokens_details") or {}
    return int(details.get("cached_tokens") or 0)


def completion(
    id_: str,
    model: str,
    text: str | None,
    tool_calls: list[ToolCall],
    finish: Finish,
    use: Usage | None,
) -> Json:
    message: Json = {"role": "assistant", "content": text}
    if tool_calls:
        message["tool_calls"] = tool_calls
    body: Json = {
        "id": id_,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
    }
    if use is not None:
        body["usage"] = use
    return body


def chunk(id_: str, model: str, delta: Json, finish: str | None = None) -> bytes:
    event = {
        "id": id_,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + orjson.dumps(event) + b"\n\n"


def usage_chunk(id_: str, model: str, use: Usage) -> bytes:
    event = {
        "id": id_,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [],
        "usage": use,
    }
    return b"data: " + orjson.dumps(event) + b"\n\n"


def error_event(message: str, type_: str = "api_error", code: str | None = None) -> bytes:
    error = {"error": {"message": message, "type": type_, "code": code}}
    return b"data: " + orjson.dumps(error) + b"\n\n"


DONE = b"data: [DONE]\n\n"


# --- reading a chat request ---------------------------------------------------------------


def system_text(messages: list[Json]) -> str | None:
    """Every system or developer message, joined: vendors take one system prompt."""
    parts = [text_of(m.get("content")) for m in messages if m.get("role") in SYSTEM_ROLES]
    return "\n\n".join(parts) if parts else None


SYSTEM_ROLES = frozenset({"system", "developer"})


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


def parts_of(content: Any) -> list[Json]:
    """A message's content as a list of parts (a plain string is one text part)."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if isinstance(content, list):
        return [p for p in content if isinstance(p, dict)]
    return []


def data_url(url: str) -> tuple[str, str] | None:
    """(media type, base64 data) of a ``data:`` URL; None for any other URL."""
    if not url.startswith("data:"):
        return None
    head, sep, data = url[5:].partition(",")
    media, _, encoding = head.partition(";")
    if not sep or encoding != "base64" or not media:
        raise BadRequest("an image data URL must be 'data:<type>;base64,<data>'", param="messages")
    return media, data


def arguments_of(call: Json, where: str) -> Json:
    """The parsed arguments of an assistant's earlier tool call."""
    raw = (call.get("function") or {}).get("arguments") or "{}"
    try:
        parsed = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"{where}.function.arguments is not JSON", param=where) from exc
    if not isinstance(parsed, dict):
        raise BadRequest(f"{where}.function.arguments must be a JSON object", param=where)
    return parsed


def tools_of(request: Json) -> list[Json]:
    """(name, description, parameters) of each function tool, as plain dicts."""
    found = []
    for i, tool in enumerate(request.get("tools") or ()):
        if not isinstance(tool, dict) or tool.get("type", "function") != "function":
            raise BadRequest("only function tools are supported", param=f"tools[{i}].type")
        fn = tool.get("function") or {}
        found.append(
            {
                "name": fn.get("name"),
                "description": fn.get("description") or "",
                "parameters": fn.get("parameters") or {"type": "object", "properties": {}},
            }
        )
    return found


def json_schema_of(request: Json) -> Json | None:
    """The schema asked for by ``response_format`` (json_object asks for any object)."""
    fmt = request.get("response_format")
    if not isinstance(fmt, dict) or fmt.get("type") in (None, "text"):
        return None
    if fmt.get("type") == "json_object":
        return {"type": "object"}
    if fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        return schema if isinstance(schema, dict) else {"type": "object"}
    raise BadRequest(
        "response_format.type must be text, json_object or json_schema",
        param="response_format.type",
    )


def max_tokens_of(request: Json, default: int | None = None) -> int | None:
    value = request.get("max_completion_tokens", request.get("max_tokens"))
    return int(value) if isinstance(value, int) else default


def stops_of(request: Json) -> list[str]:
    stop = request.get("stop")
    if isinstance(stop, str):
        return [stop]
    return [s for s in stop if isinstance(s, str)] if isinstance(stop, list) else []


def refuse_many(request: Json, vendor: str) -> None:
    """Options no translated vendor offers through this port."""
    if isinstance(request.get("n"), int) and request["n"] > 1:
        raise Unsupported(vendor, "several choices (n > 1)", "n")
    if request.get("logprobs"):
        raise Unsupported(vendor, "logprobs", "logprobs")


# --- reading a stream ---------------------------------------------------------------------


class SseParser:
    """Server-sent events from arbitrary byte chunks: (event name, data) per event."""

    __slots__ = ("_data", "_event", "_tail")

    def __init__(self) -> None:
        self._tail = b""
        self._event = ""
        self._data: list[bytes] = []

    def feed(self, chunk: bytes) -> Iterator[tuple[str, bytes]]:
        lines = (self._tail + chunk).split(b"\n")
        self._tail = lines.pop()
        for raw in lines:
            line = raw.rstrip(b"\r")
            if not line:
                if self._data:
                    yield self._event, b"\n".join(self._data)
                self._event, self._data = "", []
            elif line.startswith(b"data:"):
                self._data.append(line[5:].lstrip(b" "))
            elif line.startswith(b"event:"):
                self._event = line[6:].strip().decode()

    def end(self) -> Iterator[tuple[str, bytes]]:
        """The last event when the stream ended without a blank line."""
        if self._tail:
            yield from self.feed(b"\n\n")
        elif self._data:
            yield self._event, b"\n".join(self._data)
        self._data = []


def sse(event: str, data: Json) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
