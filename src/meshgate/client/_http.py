"""What the sync and async clients share: settings, retry timing, and reading SSE."""

from __future__ import annotations

import email.utils
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from meshgate.client._ops import Op

RETRY_STATUSES = frozenset({429, 503})
DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of 429 and 503 answers (and refused connections), honouring ``Retry-After``.

    ``max_wait`` caps one pause: a server asking for longer gets its error raised at once.
    """

    attempts: int = 3
    backoff: float = 0.5
    max_wait: float = 30.0

    def delay(self, attempt: int, response: httpx.Response | None) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None to give up."""
        if attempt >= self.attempts:
            return None
        wait = self.backoff * 2**attempt
        if response is not None:
            asked = retry_after(response.headers.get("retry-after"))
            if asked is not None:
                wait = asked
        return wait if wait <= self.max_wait else None


def retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: either a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, moment.timestamp() - time.time())


def resolve_settings(base_url: str | None, api_key: str | None) -> tuple[str, str]:
    url = base_url or os.environ.get("MESHGATE_URL")
    key = api_key or os.environ.get("MESHGATE_API_KEY")
    if not url:
        raise ValueError("no server URL: pass base_url or set MESHGATE_URL")
    if not key:
        raise ValueError("no API key: pass api_key or set MESHGATE_API_KEY")
    return url.rstrip("/"), key


def default_headers(api_key: str) -> dict[str, str]:
    from meshgate import __version__

    return {"authorization": f"Bearer {api_key}", "user-agent": f"meshgate-python/{__version__}"}


def request_kwargs(op: Op[Any]) -> dict[str, Any]:
    """httpx arguments of an op; a POST gets one Idempotency-Key kept across its retries."""
    headers = dict(op.headers)
    if op.method == "POST":
        headers.setdefault("idempotency-key", uuid.uuid4().hex)
    kwargs: dict[str, Any] = {"headers": headers}
    if op.params is not None:
        kwargs["params"] = dict(op.params)
    if op.json is not None:
        import orjson

        kwargs["content"] = orjson.dumps(op.json)
        headers.setdefault("content-type", "application/json")
    return kwargs


@dataclass
class ServerSentEvent:
    event: str = "message"
    data: str = ""
    id: str | None = None


class SSEDecoder:
    """The text/event-stream format, line by line (the WHATWG parsing rules)."""

    def __init__(self) -> None:
        self._event = ""
        self._data: list[str] = []
        self._id: str | None = None
        self.last_id: str | None = None

    def feed(self, line: str) -> ServerSentEvent | None:
        if not line:
            if not self._data:
                self._event = ""
                return None
            sse = ServerSentEvent(self._event or "message", "\n".join(self._data), self._id)
            self.last_id = self._id if self._id is not None else self.last_id
            self._event, self._data = "", []
            return sse
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id" and "\0" not in value:
            self._id = value
        return None

    def feed_lines(self, lines: Iterator[str]) -> Iterator[ServerSentEvent]:
        for line in lines:
            sse = self.feed(line)
            if sse is not None:
                yield sse
