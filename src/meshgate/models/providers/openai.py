"""Any OpenAI-compatible upstream: chat (plain and streamed) and embeddings.

The caller's body goes upstream as sent unless the model name or the context must change;
the upstream's answer comes back as sent. Only usage and the reply text are read from it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from meshgate.errors import MeshgateError
from meshgate.models.config import OpenAIProvider
from meshgate.models.errors import (
    UpstreamRateLimited,
    UpstreamRejected,
    UpstreamUnavailable,
)
from meshgate.models.providers.base import Call, JsonReply
from meshgate.models.providers.http import HttpResponse, HttpTransport
from meshgate.models.translate.checks import check_modalities
from meshgate.security.credentials import UpstreamCredential

# --- pure translation ----------------------------------------------------------------------


def request_body(body: bytes, request: dict[str, Any], model: str | None, rewrite: bool) -> bytes:
    """The upstream body: the caller's bytes, re-encoded only when something changed.

    ``request`` is the parsed body; ``rewrite`` says the model service changed it (context
    injection). Neither is mutated, so a retry or a fallback sends the same thing.
    """
    if model is not None and request.get("model") != model:
        return orjson.dumps({**request, "model": model})
    return orjson.dumps(request) if rewrite else body


def read_reply(body: bytes) -> tuple[int, str | None]:
    """(tokens used, the reply text) of a chat or embeddings answer."""
    reply = json_reply(body)
    return reply.tokens, reply.text


def json_reply(body: bytes) -> JsonReply:
    """The answer as the gateway passes it on, with what it reads of it: tokens, the reply
    text and the usage object, from one parse."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return JsonReply(body, 0, None)
    if not isinstance(data, dict):
        return JsonReply(body, 0, None)
    tokens, text = _tokens_and_text(data)
    return JsonReply(body, tokens, text, data.get("usage"))


def _tokens_and_text(data: dict[str, Any]) -> tuple[int, str | None]:
    usage = data.get("usage") or {}
    tokens = int(usage.get("total_tokens") or 0) if isinstance(usage, dict) else 0
    text = None
    choices = data.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        message = choices[0].get("message") or {}
        content = message.get("content") if isinstance(message, dict) else None
        text = content if isinstance(content, str) else None
    return tokens, text


def upstream_error(status: int, body: bytes) -> MeshgateError:
    """The upstream's refusal, in OpenAI's terms; its own message is kept when it sent one."""
    message = f"the upstream answered {status}"
    code = None
    try:
        error = orjson.loads(body).get("error")
        if isinstance(error, dict):
            message = str(error.get("message") or message)
            code = error.get("code")
        elif isinstance(error, str):
            message = error
    except (orjson.JSONDecodeError, AttributeError):
        pass
    if status == 429:
        return UpstreamRateLimited(message, code=code or "upstream_rate_limited")
    if status in (400, 404, 413, 422):
        return UpstreamRejected(message, code=code or "upstream_rejected")
    return UpstreamUnavailable(message, code=code or "upstream_error")


class StreamMeter:
    """Counts a server-sent event stream as it passes: usage when sent, else an estimate."""

    __slots__ = ("_parts", "_tail", "collect", "events", "usage")

    def __init__(self, collect: bool):
        self.collect = collect
        self.events = 0
        self.usage: int | None = None
        self._parts: list[str] = []
        self._tail = b""

    def feed(self, chunk: bytes) -> None:
        if not self.collect and b'"usage"' not in chunk:
            self.events += chunk.count(b"data:")
            return
        lines = (self._tail + chunk).split(b"\n")
        self._tail = lines.pop()
        for line in lines:
            if line.startswith(b"data:"):
                self.events += 1
                self._read_event(line[5:].strip())

    def _read_event(self, payload: bytes) -> None:
        if payload == b"[DONE]" or not payload:
            return
        try:
            event = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return
        usage = event.get("usage")
        if isinstance(usage, dict) and usage.get("total_tokens"):
            self.usage = int(usage["total_tokens"])
        if self.collect:
            for choice in event.get("choices") or ():
                content = (choice.get("delta") or {}).get("content")
                if isinstance(content, str):
                    self._parts.append(content)

    @property
    def tokens(self) -> int:
        return self.usage if self.usage is not None else self.events

    @property
    def text(self) -> str | None:
        return "".join(self._parts) if self.collect else None


# --- I/O -----------------------------------------------------------------------------------


class UpstreamStream:
    def __init__(self, response: HttpResponse, meter: StreamMeter, prompt_tokens: int):
        self.response = response
        self.meter = meter
        self.prompt_tokens = prompt_tokens
        self.finished = False

    async def chunks(self) -> AsyncIterator[bytes]:
        async for chunk in self.response.chunks():
            self.meter.feed(chunk)
            yield chunk
        self.finished = True

    def close(self) -> None:
        if self.finished:
            self.response.release()
        else:
            self.response.close()

    @property
    def tokens(self) -> int:
        if self.meter.usage is not None:
            return self.meter.usage
        return self.prompt_tokens + self.meter.events

    @property
    def text(self) -> str | None:
        return self.meter.text


class OpenAIChat:
    kind = "openai"

    def __init__(
        self,
        spec: OpenAIProvider,
        transport: HttpTransport,
        *,
        collect_text: bool,
        credential: UpstreamCredential | None = None,
    ):
        self.base = spec.base_url.rstrip("/")
        self.model = spec.model
        self.collect_text = collect_text
        self.credential = credential
        self.modalities = spec.modalities
        self.transport = transport

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def _post(self, path: str, body: bytes, call: Call) -> HttpResponse:
        headers = {"content-type": "application/json", **call.headers}
        if self.credential is not None:
            headers["authorization"] = f"Bearer {await self.credential.secret()}"
        response = await self.transport.post(self.base + path, body, headers, call.timeout)
        if response.status >= 400:
            raise upstream_error(response.status, await response.read())
        return response

    async def chat(self, body: bytes, request: dict[str, Any], call: Call) -> JsonReply:
        if self.modalities is not None:
            check_modalities(request, self.modalities)
        response = await self._post(
            "/chat/completions", request_body(body, request, self.model, call.rewrite), call
        )
        return json_reply(await response.read())

    async def chat_stream(self, body: bytes, request: dict[str, Any], call: Call) -> UpstreamStream:
        if self.modalities is not None:
            check_modalities(request, self.modalities)
        sent = request_body(body, request, self.model, call.rewrite)
        response = await self._post("/chat/completions", sent, call)
        # Without usage in the stream, count roughly 4 bytes per prompt token.
        return UpstreamStream(response, StreamMeter(self.collect_text), len(sent) // 4)

    async def embed(self, body: bytes, request: dict[str, Any], call: Call) -> JsonReply:
        response = await self._post(
            "/embeddings", request_body(body, request, self.model, call.rewrite), call
        )
        answer = await response.read()
        tokens, _ = read_reply(answer)
        return JsonReply(answer, tokens, None)
