"""The provider port: what the model service needs from any upstream or local model.

Chat-like providers (OpenAI-compatible) exchange JSON bodies and streams; tensor providers
(V2, ONNX, skops, Python) exchange named NumPy arrays. Each provider keeps its pure request and
response translation in module-level functions, apart from its I/O.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

Tensors = dict[str, np.ndarray]
Fetch = Callable[[], Awaitable[Path]]
"""Makes a stored artifact available at its local path (``models/artifacts.py``)."""


@dataclass(slots=True)
class Call:
    """Per-call settings from the model service."""

    headers: dict[str, str] = field(default_factory=dict)
    """Outbound headers: W3C ``traceparent`` and ``baggage``."""
    timeout: float = 30.0
    rewrite: bool = False
    """The parsed request was changed (context added): send it re-encoded, not the raw body."""


@dataclass(slots=True)
class JsonReply:
    body: bytes
    """The upstream's body, passed through to the client unchanged."""
    tokens: int
    """Tokens the call used (charged to the caller's tokens-per-minute buckets)."""
    text: str | None = None
    """The assistant's reply, for the session history and the prediction event."""
    usage: Any = None
    """OpenAI's ``usage`` object, when the provider already parsed the body for the rest (the
    economics gate then reads it from here instead of parsing the body again)."""


class ReplyStream(Protocol):
    """An open upstream stream: chunks as they arrive, then what was counted."""

    def chunks(self) -> AsyncIterator[bytes]: ...
    def close(self) -> None: ...
    @property
    def tokens(self) -> int: ...
    @property
    def text(self) -> str | None: ...


@runtime_checkable
class Provider(Protocol):
    kind: str

    async def start(self) -> None: ...
    async def close(self) -> None: ...


@runtime_checkable
class ChatProvider(Provider, Protocol):
    async def chat(self, body: bytes, request: dict[str, Any], call: Call) -> JsonReply: ...
    async def chat_stream(
        self, body: bytes, request: dict[str, Any], call: Call
    ) -> ReplyStream: ...
    async def embed(self, body: bytes, request: dict[str, Any], call: Call) -> JsonReply: ...


@runtime_checkable
class TensorProvider(Provider, Protocol):
    async def infer(self, inputs: Tensors, call: Call) -> Tensors: ...
