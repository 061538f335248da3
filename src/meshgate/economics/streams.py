"""Streamed answers, seen on the way to the client: placeholders put back and usage read.

A placeholder may arrive split over several events (``[EMA`` then ``IL_1]``): the text that
could still be the start of one is held back until the next event, or the last one, decides.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from meshgate.economics.guardrails import Redactions


class StreamWatch:
    """Reads the usage of a stream as it passes; with redactions, restores the text."""

    def __init__(self, redactions: Redactions | None):
        self.redactions = redactions if redactions else None
        self.usage: dict[str, Any] | None = None
        self._pending: dict[int, str] = {}
        self._buffer = b""

    async def relay(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for chunk in chunks:
            if self.redactions is None:
                if b'"usage"' in chunk:
                    self._read_usage(chunk)
                yield chunk
                continue
            self._buffer += chunk
            *events, self._buffer = self._buffer.split(b"\n\n")
            out = b"".join(self._event(e) for e in events)
            if out:
                yield out
        if self._buffer or self._pending:
            yield self._event(self._buffer, final=True) if self._buffer else self._flush()

    def _read_usage(self, chunk: bytes) -> None:
        for line in chunk.split(b"\n"):
            if line.startswith(b"data:") and b'"usage"' in line:
                try:
                    usage = orjson.loads(line[5:]).get("usage")
                except (orjson.JSONDecodeError, AttributeError):
                    continue
                if isinstance(usage, dict):
                    self.usage = usage

    def _event(self, raw: bytes, final: bool = False) -> bytes:
        if not raw.startswith(b"data:"):
            return raw + b"\n\n" if raw else b""
        payload = raw[5:].strip()
        if payload == b"[DONE]":
            return self._flush() + raw + b"\n\n"
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return raw + b"\n\n"
        if isinstance(event.get("usage"), dict):
            self.usage = event["usage"]
        for choice in event.get("choices") or ():
            delta = choice.get("delta")
            if not isinstance(delta, dict):
                continue
            index = choice.get("index", 0)
            text = self._pending.pop(index, "") + (delta.get("content") or "")
            ending = final or choice.get("finish_reason") is not None
            ready, held = (text, "") if ending else self._split(text)
            if held:
                self._pending[index] = held
            if ready or "content" in delta:
                delta["content"] = self.redactions.restore(ready) if self.redactions else ready
        return b"data: " + orjson.dumps(event) + b"\n\n"

    def _split(self, text: str) -> tuple[str, str]:
        """(text safe to send, the tail that may be the start of a placeholder)."""
        start = text.rfind("[")
        assert self.redactions is not None
        if start == -1 or "]" in text[start:] or len(text) - start >= self.redactions.longest():
            return text, ""
        return text[:start], text[start:]

    def _flush(self) -> bytes:
        """Held-back text when the stream ends without a closing event to carry it."""
        if not self._pending:
            return b""
        choices = [
            {"index": i, "delta": {"content": self.redactions.restore(t) if self.redactions else t}}
            for i, t in sorted(self._pending.items())
        ]
        self._pending.clear()
        event = {"object": "chat.completion.chunk", "choices": choices}
        return b"data: " + orjson.dumps(event) + b"\n\n"
