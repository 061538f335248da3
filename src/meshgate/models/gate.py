"""The gate every chat call passes: the port through which cost and safety checks (budgets,
the response cache, guardrails, spend) see a call before and after the upstream.

The chat flow asks :meth:`Gate.admit` once the model, the version and the injected context
are known; the :class:`Admission` it gets back may have changed the request (redaction), may
hold a stored answer (a cache hit), and finishes the call once the answer is known. Without
an economics module the open gate lets everything through unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from meshgate.models.predictions import Prediction
from meshgate.models.providers.base import JsonReply

if TYPE_CHECKING:
    from meshgate.models.inference import Caller
    from meshgate.models.runtime import ModelRuntime


class Admission(Protocol):
    rewrite: bool
    """The request was changed: send it re-encoded, not the caller's bytes."""
    cached: bytes | None
    """A stored answer to send instead of calling the upstream."""
    cache: str | None
    """``hit`` or ``miss`` when the model caches answers, else None."""

    async def finish(self, prediction: Prediction, reply: JsonReply) -> JsonReply:
        """The answer as the client gets it; notes spend (and a block) on ``prediction``."""
        ...

    def relay(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """A streamed answer as the client gets it."""
        ...

    async def finish_stream(self, prediction: Prediction) -> None:
        """Once a stream ended: spend on ``prediction``."""
        ...

    async def abandon(self) -> None:
        """The call failed before an answer: give back what was held for it."""
        ...


Embed = Callable[[str, str], Awaitable[list[float]]]
"""``embed(model, text)``: the embedding of ``text`` by the caller's tenant's model ``model``
(the semantic cache asks for it)."""


class Gate(Protocol):
    async def admit(
        self,
        rt: ModelRuntime,
        version: str,
        caller: Caller,
        request: dict[str, Any],
        prediction_id: str,
        embed: Embed,
    ) -> Admission: ...


class OpenAdmission:
    rewrite: bool = False
    cached: bytes | None = None
    cache: str | None = None

    async def finish(self, prediction: Prediction, reply: JsonReply) -> JsonReply:
        return reply

    def relay(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        return chunks

    async def finish_stream(self, prediction: Prediction) -> None:
        pass

    async def abandon(self) -> None:
        pass


OPEN_ADMISSION = OpenAdmission()


class OpenGate:
    async def admit(
        self,
        rt: ModelRuntime,
        version: str,
        caller: Caller,
        request: dict[str, Any],
        prediction_id: str,
        embed: Embed,
    ) -> Admission:
        return OPEN_ADMISSION
