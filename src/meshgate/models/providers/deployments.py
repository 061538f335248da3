"""A version served from several deployments (say Azure in two regions plus OpenAI).

Each call asks the routing strategy for an order, skips deployments that are cooling down,
and tries them in turn: a deployment that answers 429 or 5xx (or cannot be reached) cools
down for ``cooldown_seconds`` and the call moves to the next one within the same request.
A refusal of the request itself (a 400) is the caller's and goes back at once.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import orjson

from meshgate.errors import MeshgateError
from meshgate.models.config import DeploymentsProvider
from meshgate.models.deployment_routing import Candidate, Cooldowns, strategy
from meshgate.models.errors import Retryable, UpstreamRateLimited, UpstreamUnavailable
from meshgate.models.providers.base import Call, ChatProvider, JsonReply, ReplyStream

log = logging.getLogger("meshgate.models")
T = TypeVar("T")
MOVE_ON = (Retryable, UpstreamRateLimited)


def deployment_key(spec: Any) -> str:
    """The same deployment has the same key on every node (its cooldown is shared)."""
    raw = orjson.dumps(spec.model_dump(), option=orjson.OPT_SORT_KEYS)
    return "deployment:" + hashlib.sha256(raw).hexdigest()[:24]


class Deployed:
    def __init__(self, candidate: Candidate, provider: ChatProvider, key: str):
        self.candidate = candidate
        self.provider = provider
        self.key = key


class MeteredStream:
    """A deployment's stream that reports its end to the deployment's figures."""

    def __init__(self, inner: ReplyStream, done: Callable[[int], None]):
        self.inner = inner
        self.done: Callable[[int], None] | None = done

    async def chunks(self) -> AsyncIterator[bytes]:
        async for chunk in self.inner.chunks():
            yield chunk

    def close(self) -> None:
        self.inner.close()
        if self.done is not None:
            done, self.done = self.done, None
            done(self.inner.tokens)

    @property
    def tokens(self) -> int:
        return self.inner.tokens

    @property
    def text(self) -> str | None:
        return self.inner.text


class DeploymentsChat:
    kind = "deployments"

    def __init__(
        self,
        spec: DeploymentsProvider,
        build: Callable[[Any], ChatProvider],
        cooldowns: Cooldowns,
        *,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.deployed = [
            Deployed(
                Candidate(d.name, d.weight, d.rpm, d.tpm),
                build(d.provider),
                deployment_key(d.provider),
            )
            for d in spec.deployments
        ]
        self.strategy = strategy(spec.routing)
        self.cooldown_seconds = spec.cooldown_seconds
        self.cooldowns = cooldowns
        self.clock = clock

    async def start(self) -> None:
        for d in self.deployed:
            await d.provider.start()

    async def close(self) -> None:
        for d in self.deployed:
            await d.provider.close()

    async def _order(self) -> list[Deployed]:
        resting = await self.cooldowns.cooling([d.key for d in self.deployed])
        ready = {d.candidate.name: d for d in self.deployed if d.key not in resting}
        if not ready:
            raise UpstreamUnavailable(
                "every deployment of this version is cooling down after failures",
                code="deployments_cooling_down",
            )
        return [ready[c.name] for c in self.strategy.order([d.candidate for d in ready.values()])]

    async def _each(
        self, work: Callable[[ChatProvider], Awaitable[T]]
    ) -> tuple[Deployed, T, float]:
        """(the deployment that answered, its answer, when its call began)."""
        failure: MeshgateError | None = None
        for d in await self._order():
            figures = d.candidate.figures
            began = self.clock()
            figures.started(began)
            try:
                result = await work(d.provider)
            except MOVE_ON as exc:
                figures.ended(None, 0, self.clock())
                await self.cooldowns.cool(d.key, self.cooldown_seconds)
                log.warning("deployment %s failed, cooling down: %s", d.candidate.name, exc.detail)
                failure = exc
                continue
            except BaseException:
                figures.ended(None, 0, self.clock())
                raise
            return d, result, began
        assert failure is not None
        raise failure

    async def chat(self, body: bytes, request: dict[str, Any], call: Call) -> JsonReply:
        d, reply, began = await self._each(lambda p: p.chat(body, request, call))
        d.candidate.figures.ended(self.clock() - began, reply.tokens, self.clock())
        return reply

    async def chat_stream(self, body: bytes, request: dict[str, Any], call: Call) -> ReplyStream:
        d, stream, began = await self._each(lambda p: p.chat_stream(body, request, call))
        # A stream's latency is the time to open it (its first byte), not its length.
        latency = self.clock() - began

        def done(tokens: int) -> None:
            d.candidate.figures.ended(latency, tokens, self.clock())

        return MeteredStream(stream, done)

    async def embed(self, body: bytes, request: dict[str, Any], call: Call) -> JsonReply:
        d, reply, began = await self._each(lambda p: p.embed(body, request, call))
        d.candidate.figures.ended(self.clock() - began, reply.tokens, self.clock())
        return reply
