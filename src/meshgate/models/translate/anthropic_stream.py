"""Streams between Anthropic's message events and chat completion chunks, both ways.

Each translator is fed raw bytes as they arrive and returns the bytes to send on: pure state
machines, no I/O. Both keep the reply text and the usage they saw, for the prediction record.
"""

from __future__ import annotations

import orjson

from meshgate.models.translate.anthropic import (
    FINISH_TO_STOP,
    JSON_TOOL,
    STOP_TO_FINISH,
    error_body,
    usage_to_anthropic,
    usage_to_chat,
)
from meshgate.models.translate.chat import (
    DONE,
    Json,
    SseParser,
    Usage,
    chunk,
    error_event,
    sse,
    usage_chunk,
)


class ChatToMessageEvents:
    """Chat completion chunks (any model) to the events of ``POST /v1/messages``."""

    def __init__(self, model: str, message_id: str):
        self.model = model
        self.id = message_id
        self.parser = SseParser()
        self.started = False
        self.block: str | None = None  # "text" or "tool:<chat index>"
        self.index = -1
        self.stop_reason = "end_turn"
        self.usage: Json | None = None
        self.ended = False

    def feed(self, data: bytes) -> bytes:
        out: list[bytes] = []
        for _, payload in self.parser.feed(data):
            self._event(payload, out)
        return b"".join(out)

    def end(self) -> bytes:
        out: list[bytes] = []
        for _, payload in self.parser.end():
            self._event(payload, out)
        self._finish(out)
        return b"".join(out)

    def _event(self, payload: bytes, out: list[bytes]) -> None:
        if self.ended:
            return
        if payload == b"[DONE]":
            self._finish(out)
            return
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return
        self._start(out)
        if "error" in event:
            error = event["error"] if isinstance(event["error"], dict) else {}
            out.append(sse("error", error_body(500, str(error.get("message", "upstream error")))))
            self.ended = True
            return
        if isinstance(event.get("usage"), dict):
            self.usage = event["usage"]
        for choice in event.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("content"):
                self._open("text", {"type": "text", "text": ""}, out)
                out.append(self._delta({"type": "text_delta", "text": delta["content"]}))
            for call in delta.get("tool_calls") or ():
                key = f"tool:{call.get('index', 0)}"
                fn = call.get("function") or {}
                if key != self.block:
                    block: Json = {
                        "type": "tool_use",
                        "id": call.get("id") or f"toolu_{self.index + 1}",
                        "name": fn.get("name") or "",
                        "input": {},
                    }
                    self._open(key, block, out)
                if fn.get("arguments"):
                    out.append(
                        self._delta({"type": "input_json_delta", "partial_json": fn["arguments"]})
                    )
            if choice.get("finish_reason"):
                self.stop_reason = FINISH_TO_STOP.get(choice["finish_reason"], "end_turn")

    def _start(self, out: list[bytes]) -> None:
        if self.started:
            return
        self.started = True
        message: Json = {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        out.append(sse("message_start", {"type": "message_start", "message": message}))

    def _open(self, key: str, block: Json, out: list[bytes]) -> None:
        if self.block == key:
            return
        self._close(out)
        self.block, self.index = key, self.index + 1
        out.append(
            sse(
                "content_block_start",
                {"type": "content_block_start", "index": self.index, "content_block": block},
            )
        )

    def _close(self, out: list[bytes]) -> None:
        if self.block is not None:
            out.append(
                sse("content_block_stop", {"type": "content_block_stop", "index": self.index})
            )
            self.block = None

    def _delta(self, delta: Json) -> bytes:
        return sse(
            "content_block_delta",
            {"type": "content_block_delta", "index": self.index, "delta": delta},
        )

    def _finish(self, out: list[bytes]) -> None:
        if self.ended:
            return
        self._start(out)
        self._close(out)
        use = usage_to_anthropic(self.usage)
        out.append(
            sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": self.stop_reason, "stop_sequence": None},
                    "usage": use,
                },
            )
        )
        out.append(sse("message_stop", {"type": "message_stop"}))
        self.ended = True


class MessageEventsToChat:
    """Anthropic's message events (the ``anthropic`` provider) to chat completion chunks."""

    def __init__(self, model: str, include_usage: bool):
        self.model = model
        self.include_usage = include_usage
        self.parser = SseParser()
        self.id = "chatcmpl-anthropic"
        self.tools: dict[int, int] = {}  # Anthropic block index -> chat tool call index
        self.json_blocks: set[int] = set()
        self.usage_in: Json = {}
        self.output_tokens = 0
        self.parts: list[str] = []
        self.done = False

    def feed(self, data: bytes) -> bytes:
        out: list[bytes] = []
        for _, payload in self.parser.feed(data):
            self._event(payload, out)
        return b"".join(out)

    def end(self) -> bytes:
        out: list[bytes] = []
        for _, payload in self.parser.end():
            self._event(payload, out)
        if not self.done:
            out.append(error_event("the upstream stream ended early", code="upstream_error"))
            self.done = True
        return b"".join(out)

    @property
    def usage(self) -> Usage:
        return usage_to_chat({**self.usage_in, "output_tokens": self.output_tokens})

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def _event(self, payload: bytes, out: list[bytes]) -> None:
        if self.done:
            return
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            self.id = "chatcmpl-" + str(message.get("id", "")).removeprefix("msg_")
            self.usage_in = message.get("usage") or {}
            self.output_tokens = int(self.usage_in.get("output_tokens") or 0)
            out.append(chunk(self.id, self.model, {"role": "assistant", "content": ""}))
        elif kind == "content_block_start":
            self._block_start(event, out)
        elif kind == "content_block_delta":
            self._block_delta(event, out)
        elif kind == "message_delta":
            use = event.get("usage") or {}
            self.output_tokens = int(use.get("output_tokens") or self.output_tokens)
            for name in ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
                if use.get(name) is not None:
                    self.usage_in[name] = use[name]
            stop = (event.get("delta") or {}).get("stop_reason") or "end_turn"
            finish = STOP_TO_FINISH.get(stop, "stop")
            if finish == "tool_calls" and not self.tools:
                finish = "stop"
            out.append(chunk(self.id, self.model, {}, finish))
        elif kind == "message_stop":
            if self.include_usage:
                out.append(usage_chunk(self.id, self.model, self.usage))
            out.append(DONE)
            self.done = True
        elif kind == "error":
            error = event.get("error") or {}
            out.append(
                error_event(str(error.get("message", "upstream error")), code=error.get("type"))
            )
            self.done = True

    def _block_start(self, event: Json, out: list[bytes]) -> None:
        block = event.get("content_block") or {}
        index = int(event.get("index") or 0)
        if block.get("type") == "tool_use" and block.get("name") == JSON_TOOL:
            self.json_blocks.add(index)
        elif block.get("type") == "tool_use":
            position = self.tools[index] = len(self.tools)
            call = {
                "index": position,
                "id": block.get("id"),
                "type": "function",
                "function": {"name": block.get("name"), "arguments": ""},
            }
            out.append(chunk(self.id, self.model, {"tool_calls": [call]}))
        elif block.get("type") == "text" and block.get("text"):
            self.parts.append(block["text"])
            out.append(chunk(self.id, self.model, {"content": block["text"]}))

    def _block_delta(self, event: Json, out: list[bytes]) -> None:
        delta = event.get("delta") or {}
        index = int(event.get("index") or 0)
        if delta.get("type") == "text_delta":
            self.parts.append(delta.get("text", ""))
            out.append(chunk(self.id, self.model, {"content": delta.get("text", "")}))
        elif delta.get("type") == "input_json_delta" and index in self.json_blocks:
            self.parts.append(delta.get("partial_json", ""))
            out.append(chunk(self.id, self.model, {"content": delta.get("partial_json", "")}))
        elif delta.get("type") == "input_json_delta" and index in self.tools:
            call = {
                "index": self.tools[index],
                "function": {"arguments": delta.get("partial_json", "")},
            }
            out.append(chunk(self.id, self.model, {"tool_calls": [call]}))
