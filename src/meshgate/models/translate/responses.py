"""OpenAI's Responses API and the chat shape (pure functions).

:func:`responses_to_chat` turns a Responses request (with the messages of the earlier
responses it continues) into a chat request; :func:`response_object` turns the chat answer
into a Response; :class:`ChatToResponseEvents` does the same for a stream.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from meshgate.errors import BadRequest
from meshgate.models.translate.chat import Json, SseParser, cached_tokens, sse, text_of
from meshgate.models.translate.checks import check_numbers, check_schema


def input_messages(request: Json) -> list[Json]:
    """The chat messages this request adds: its instructions, then its input items."""
    messages: list[Json] = []
    if isinstance(request.get("instructions"), str):
        messages.append({"role": "system", "content": request["instructions"]})
    items = request.get("input")
    if isinstance(items, str):
        return [*messages, {"role": "user", "content": items}]
    if not isinstance(items, list) or not items:
        raise BadRequest("input: a string or a non-empty list of items", param="input")
    for i, item in enumerate(items):
        messages.append(_item_to_chat(item, f"input[{i}]"))
    return _merge_calls(messages)


def _item_to_chat(item: Any, where: str) -> Json:
    if not isinstance(item, dict):
        raise BadRequest(f"{where}: an item is an object", param=where)
    kind = item.get("type", "message")
    if kind == "function_call":
        call = {
            "id": item.get("call_id"),
            "type": "function",
            "function": {"name": item.get("name"), "arguments": item.get("arguments", "{}")},
        }
        return {"role": "assistant", "content": None, "tool_calls": [call]}
    if kind == "function_call_output":
        output = item.get("output")
        text = output if isinstance(output, str) else orjson.dumps(output).decode()
        return {"role": "tool", "tool_call_id": item.get("call_id"), "content": text}
    if kind != "message":
        raise BadRequest(f"{where}.type {kind!r} is not supported", param=f"{where}.type")
    role = item.get("role")
    if role not in ("user", "assistant", "system", "developer"):
        raise BadRequest(f"{where}.role {role!r} is not known", param=f"{where}.role")
    content = item.get("content")
    if isinstance(content, str):
        return {"role": role, "content": content}
    if not isinstance(content, list):
        raise BadRequest(f"{where}.content: a string or a list of parts", param=f"{where}.content")
    parts: list[Json] = []
    for j, part in enumerate(content):
        ptype = part.get("type") if isinstance(part, dict) else None
        if ptype in ("input_text", "output_text", "text"):
            parts.append({"type": "text", "text": part.get("text", "")})
        elif ptype == "input_image" and isinstance(part.get("image_url"), str):
            parts.append({"type": "image_url", "image_url": {"url": part["image_url"]}})
        else:
            raise BadRequest(
                f"{where}.content[{j}].type {ptype!r} is not supported",
                param=f"{where}.content[{j}].type",
            )
    if role != "user" or all(p["type"] == "text" for p in parts):
        return {"role": role, "content": text_of(parts)}
    return {"role": role, "content": parts}


def _merge_calls(messages: list[Json]) -> list[Json]:
    """Function-call items in a row are one assistant turn with several tool calls."""
    merged: list[Json] = []
    for m in messages:
        prev = merged[-1] if merged else None
        if prev and m.get("tool_calls") and prev.get("tool_calls") and not m.get("content"):
            prev["tool_calls"] = [*prev["tool_calls"], *m["tool_calls"]]
        else:
            merged.append(m)
    return merged


def responses_to_chat(request: Json, history: list[Json], new: list[Json]) -> Json:
    model = request.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("model: a string is required", param="model")
    check_numbers(request, ("max_output_tokens",), ("temperature", "top_p"))
    chat: Json = {"model": model, "messages": [*history, *new]}
    if isinstance(request.get("max_output_tokens"), int):
        chat["max_tokens"] = request["max_output_tokens"]
    for name in ("temperature", "top_p", "parallel_tool_calls", "user"):
        if request.get(name) is not None:
            chat[name] = request[name]
    if request.get("tools"):
        chat["tools"] = [_tool_to_chat(t, f"tools[{i}]") for i, t in enumerate(request["tools"])]
    choice = request.get("tool_choice")
    if isinstance(choice, str):
        chat["tool_choice"] = choice
    elif isinstance(choice, dict) and choice.get("type") == "function":
        chat["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    fmt = (
        (request.get("text") or {}).get("format") if isinstance(request.get("text"), dict) else None
    )
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        chat["response_format"] = {
            "type": "json_schema",
            "json_schema": {
                "name": fmt.get("name", "output"),
                "schema": fmt.get("schema") or {},
                "strict": bool(fmt.get("strict")),
            },
        }
    elif isinstance(fmt, dict) and fmt.get("type") == "json_object":
        chat["response_format"] = {"type": "json_object"}
    if request.get("stream") is True:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat


def _tool_to_chat(tool: Any, where: str) -> Json:
    if not isinstance(tool, dict) or tool.get("type") != "function":
        kind = tool.get("type") if isinstance(tool, dict) else None
        raise BadRequest(
            f"{where}.type {kind!r}: only function tools are supported", param=f"{where}.type"
        )
    function = {"name": tool.get("name"), "description": tool.get("description") or ""}
    if "parameters" in tool:
        check_schema(tool["parameters"], f"{where}.parameters")
        function["parameters"] = tool["parameters"]
    return {"type": "function", "function": function}


# --- the answer ----------------------------------------------------------------------------


def output_of(message: Json, item_id: str) -> list[Json]:
    """A chat reply's message as Response output items."""
    items: list[Json] = []
    text = message.get("content")
    if text:
        items.append(
            {
                "type": "message",
                "id": item_id,
                "status": "completed",
                "role": "assistant",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        )
    for k, call in enumerate(message.get("tool_calls") or ()):
        fn = call.get("function") or {}
        items.append(
            {
                "type": "function_call",
                "id": f"fc_{k}_{item_id}",
                "call_id": call.get("id"),
                "name": fn.get("name"),
                "arguments": fn.get("arguments") or "",
                "status": "completed",
            }
        )
    return items


def usage_of(u: Json | None) -> Json:
    u = u or {}
    prompt, completion = int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0)
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cached_tokens(u)},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt + completion,
    }


def response_object(
    response_id: str,
    request: Json,
    output: list[Json],
    finish: str | None,
    use: Json | None,
    status: str = "completed",
) -> Json:
    incomplete = finish == "length"
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": "incomplete" if incomplete and status == "completed" else status,
        "incomplete_details": {"reason": "max_output_tokens"} if incomplete else None,
        "error": None,
        "model": request["model"],
        "instructions": request.get("instructions"),
        "previous_response_id": request.get("previous_response_id"),
        "output": output,
        "parallel_tool_calls": request.get("parallel_tool_calls", True),
        "tool_choice": request.get("tool_choice", "auto"),
        "tools": request.get("tools") or [],
        "temperature": request.get("temperature"),
        "top_p": request.get("top_p"),
        "max_output_tokens": request.get("max_output_tokens"),
        "text": request.get("text") or {"format": {"type": "text"}},
        "store": request.get("store", True),
        "metadata": request.get("metadata") or {},
        "usage": usage_of(use) if use is not None else None,
    }


def reply_message(output: list[Json]) -> Json:
    """The assistant turn a response adds to the conversation, as a chat message."""
    text = "".join(
        p["text"] for item in output if item["type"] == "message" for p in item["content"]
    )
    calls = [
        {
            "id": item["call_id"],
            "type": "function",
            "function": {"name": item["name"], "arguments": item["arguments"]},
        }
        for item in output
        if item["type"] == "function_call"
    ]
    message: Json = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    return message


class ChatToResponseEvents:
    """Chat completion chunks to the Responses stream events; keeps the final Response."""

    def __init__(self, response_id: str, request: Json):
        self.id = response_id
        self.request = request
        self.parser = SseParser()
        self.seq = 0
        self.text: list[str] = []
        self.calls: dict[int, Json] = {}
        self.finish: str | None = None
        self.usage: Json | None = None
        self.final: Json | None = None
        self.error: str | None = None

    def _emit(self, kind: str, data: Json) -> bytes:
        self.seq += 1
        return sse(kind, {"type": kind, "sequence_number": self.seq, **data})

    def start(self) -> bytes:
        shell = response_object(self.id, self.request, [], None, None, "in_progress")
        return self._emit("response.created", {"response": shell}) + self._emit(
            "response.in_progress", {"response": shell}
        )

    def feed(self, data: bytes) -> bytes:
        out = []
        for _, payload in self.parser.feed(data):
            if payload == b"[DONE]" or self.error:
                continue
            try:
                event = orjson.loads(payload)
            except orjson.JSONDecodeError:
                continue
            out.append(self._event(event))
        return b"".join(out)

    def _event(self, event: Json) -> bytes:
        if "error" in event:
            self.error = str((event["error"] or {}).get("message", "upstream error"))
            return b""
        if isinstance(event.get("usage"), dict):
            self.usage = event["usage"]
        out = []
        for choice in event.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("content"):
                if not self.text:
                    out.append(self._message_open())
                self.text.append(delta["content"])
                out.append(
                    self._emit(
                        "response.output_text.delta",
                        {
                            "item_id": self.message_id,
                            "output_index": 0,
                            "content_index": 0,
                            "delta": delta["content"],
                            "logprobs": [],
                        },
                    )
                )
            for call in delta.get("tool_calls") or ():
                out.append(self._call_delta(call))
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
        return b"".join(out)

    @property
    def message_id(self) -> str:
        return "msg_" + self.id.removeprefix("resp_")

    def _message_open(self) -> bytes:
        item = {
            "type": "message",
            "id": self.message_id,
            "status": "in_progress",
            "role": "assistant",
            "content": [],
        }
        part = {"type": "output_text", "text": "", "annotations": []}
        return self._emit(
            "response.output_item.added", {"output_index": 0, "item": item}
        ) + self._emit(
            "response.content_part.added",
            {"item_id": self.message_id, "output_index": 0, "content_index": 0, "part": part},
        )

    def _call_delta(self, call: Json) -> bytes:
        index = int(call.get("index") or 0)
        fn = call.get("function") or {}
        out = b""
        if index not in self.calls:
            item = {
                "type": "function_call",
                "id": f"fc_{index}_{self.message_id}",
                "call_id": call.get("id"),
                "name": fn.get("name"),
                "arguments": "",
                "status": "in_progress",
            }
            self.calls[index] = item
            out += self._emit(
                "response.output_item.added",
                {"output_index": self._call_position(index), "item": item},
            )
        item = self.calls[index]
        if fn.get("arguments"):
            item["arguments"] += fn["arguments"]
            out += self._emit(
                "response.function_call_arguments.delta",
                {
                    "item_id": item["id"],
                    "output_index": self._call_position(index),
                    "delta": fn["arguments"],
                },
            )
        return out

    def _call_position(self, index: int) -> int:
        return (1 if self.text else 0) + sorted(self.calls).index(index)

    def end(self) -> bytes:
        if self.error is not None:
            failed = response_object(self.id, self.request, [], None, None, "failed")
            failed["error"] = {"code": "server_error", "message": self.error}
            return self._emit("response.failed", {"response": failed})
        out = []
        text = "".join(self.text)
        output: list[Json] = []
        if self.text:
            part = {"type": "output_text", "text": text, "annotations": []}
            item = {
                "type": "message",
                "id": self.message_id,
                "status": "completed",
                "role": "assistant",
                "content": [part],
            }
            base = {"item_id": self.message_id, "output_index": 0, "content_index": 0}
            out.append(
                self._emit("response.output_text.done", {**base, "text": text, "logprobs": []})
            )
            out.append(self._emit("response.content_part.done", {**base, "part": part}))
            out.append(self._emit("response.output_item.done", {"output_index": 0, "item": item}))
            output.append(item)
        for index in sorted(self.calls):
            item = {**self.calls[index], "status": "completed"}
            position = self._call_position(index)
            out.append(
                self._emit(
                    "response.function_call_arguments.done",
                    {
                        "item_id": item["id"],
                        "output_index": position,
                        "name": item["name"],
                        "arguments": item["arguments"],
                    },
                )
            )
            out.append(
                self._emit("response.output_item.done", {"output_index": position, "item": item})
            )
            output.append(item)
        self.final = response_object(self.id, self.request, output, self.finish, self.usage)
        kind = (
            "response.completed" if self.final["status"] == "completed" else "response.incomplete"
        )
        out.append(self._emit(kind, {"response": self.final}))
        return b"".join(out)
