"""What every translating chat provider shares: sending, error mapping, translated streams.

A vendor provider file holds its pure translation (request, answer, stream events, errors)
and a small class on :class:`VendorChat` for the I/O. Answers and streams leave every
provider in the chat completions shape, so the routes never know which vendor served them.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any, Protocol

import orjson

from meshgate.errors import MeshgateError
from meshgate.models.errors import UpstreamRateLimited, UpstreamRejected, UpstreamUnavailable
from meshgate.models.providers.base import Call, JsonReply
from meshgate.models.providers.http import HttpResponse, HttpTransport
from meshgate.models.translate.chat import Json, Unsupported, Usage, text_of
from meshgate.models.translate.checks import check_modalities
from meshgate.security.credentials import UpstreamCredential

ErrorOf = Callable[[int, bytes], MeshgateError]


class StreamTranslator(Protocol):
    """Vendor stream bytes in, chat completion chunks out; keeps what it counted."""

    def feed(self, data: bytes) -> bytes: ...
    def end(self) -> bytes: ...
    @property
    def usage(self) -> Usage: ...
    @property
    def text(self) -> str: ...


def vendor_error(status: int, message: str, code: str | None = None) -> MeshgateError:
    """A vendor's refusal as the model services' error of the same meaning."""
    if status == 429:
        return UpstreamRateLimited(message, code=code or "upstream_rate_limited")
    if 400 <= status < 500 and status not in (401, 403, 408, 409):
        return UpstreamRejected(message, code=code or "upstream_rejected")
    # A key the upstream refuses, a timeout, a 5xx: not the caller's fault.
    return UpstreamUnavailable(message, code=code or "upstream_error")


def json_or_none(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


class TranslatedStream:
    """An open vendor stream, translated chunk by chunk as it passes."""

    def __init__(self, response: HttpResponse, translator: StreamTranslator):
        self.response = response
        self.translator = translator
        self.finished = False

    async def chunks(self) -> AsyncIterator[bytes]:
        async for raw in self.response.chunks():
            if out := self.translator.feed(raw):
                yield out
        if tail := self.translator.end():
            yield tail
        self.finished = True

    def close(self) -> None:
        if self.finished:
            self.response.release()
        else:
            self.response.close()

    @property
    def tokens(self) -> int:
        return self.translator.usage["total_tokens"]

    @property
    def text(self) -> str | None:
        return self.translator.text


class VendorChat:
    """The I/O half of a translating provider; subclasses add ``chat`` and ``chat_stream``."""

    kind = "vendor"

    def __init__(
        self,
        transport: HttpTransport,
        modalities: Sequence[str] | None,
        error_of: ErrorOf,
        credential: UpstreamCredential | None = None,
        key_header: str = "authorization",
    ):
        self.transport = transport
        self.modalities = modalities
        self.error_of = error_of
        self.credential = credential
        self.key_header = key_header

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def check(self, request: Json) -> None:
        check_modalities(request, self.modalities)

    async def send(
        self, url: str, body: Json, headers: Mapping[str, str], call: Call
    ) -> HttpResponse:
        payload = orjson.dumps(body)
        merged = {"content-type": "application/json", **headers, **call.headers}
        if self.credential is not None:
            merged[self.key_header] = await self.credential.secret()
        response = await self.transport.post(url, payload, merged, call.timeout)
        if response.status >= 400:
            raise self.error_of(response.status, await response.read())
        return response

    @staticmethod
    def reply(answer: Json) -> JsonReply:
        choice = (answer.get("choices") or [{}])[0]
        text = text_of((choice.get("message") or {}).get("content"))
        tokens = int((answer.get("usage") or {}).get("total_tokens") or 0)
        return JsonReply(orjson.dumps(answer), tokens, text)

    async def embed(self, body: bytes, request: dict[str, Any], call: Call) -> JsonReply:
        raise Unsupported(self.kind, "embeddings through this provider", "model")
