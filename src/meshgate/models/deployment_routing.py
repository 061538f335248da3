"""Choosing among a version's deployments: routing strategies, live figures and cooldowns.

A strategy orders the deployments that are not cooling down, best first; the caller tries
them in that order within one request. Figures (calls in flight, a moving average of
latency, this minute's requests and tokens) are kept per process; cooldowns go through a
small port so that, with Redis, a deployment that answered 429 rests on every node.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

Clock = Callable[[], float]
EMA_WEIGHT = 0.3  # weight of the newest latency in the moving average


@dataclass
class Figures:
    """What one process saw of one deployment."""

    in_flight: int = 0
    latency: float | None = None
    minute: int = -1
    requests: int = 0
    tokens: int = 0

    def roll(self, now: float) -> None:
        current = int(now // 60)
        if current != self.minute:
            self.minute, self.requests, self.tokens = current, 0, 0

    def started(self, now: float) -> None:
        self.roll(now)
        self.in_flight += 1
        self.requests += 1

    def ended(self, seconds: float | None, tokens: int, now: float) -> None:
        self.in_flight -= 1
        self.roll(now)
        self.tokens += tokens
        if seconds is not None:
            self.latency = (
                seconds
                if self.latency is None
                else EMA_WEIGHT * seconds + (1 - EMA_WEIGHT) * self.latency
            )


@dataclass
class Candidate:
    name: str
    weight: int
    rpm: int | None
    tpm: int | None
    figures: Figures = field(default_factory=Figures)

    def headroom(self) -> float:
        """The smaller share left of this minute's request and token limits (1.0: no limit)."""
        shares = [1.0]
        if self.rpm:
            shares.append(1 - self.figures.requests / self.rpm)
        if self.tpm:
            shares.append(1 - self.figures.tokens / self.tpm)
        return min(shares)


class Strategy(Protocol):
    def order(self, candidates: Sequence[Candidate]) -> list[Candidate]: ...


@dataclass
class Weighted:
    """Random by weight (without replacement, so the rest follow in weighted order)."""

    rand: Callable[[], float] = random.random

    def order(self, candidates: Sequence[Candidate]) -> list[Candidate]:
        left, ordered = list(candidates), list[Candidate]()
        while left:
            weights = [max(c.weight, 0) for c in left]
            total = sum(weights)
            if total == 0:
                return ordered + left
            point, index = self.rand() * total, len(left) - 1
            for i, weight in enumerate(weights):
                point -= weight
                if point < 0:
                    index = i
                    break
            ordered.append(left.pop(index))
        return ordered


class LeastBusy:
    def order(self, candidates: Sequence[Candidate]) -> list[Candidate]:
        return sorted(candidates, key=lambda c: c.figures.in_flight)


class LowestLatency:
    """Lowest moving average first; one never measured is tried first, to learn it."""

    def order(self, candidates: Sequence[Candidate]) -> list[Candidate]:
        return sorted(candidates, key=lambda c: c.figures.latency or 0.0)


class Usage:
    """Most headroom against its RPM/TPM first; deployments at their limit go last."""

    def order(self, candidates: Sequence[Candidate]) -> list[Candidate]:
        return sorted(candidates, key=lambda c: -c.headroom())


def strategy(name: str) -> Strategy:
    strategies: dict[str, Callable[[], Strategy]] = {
        "weighted": Weighted,
        "least_busy": LeastBusy,
        "lowest_latency": LowestLatency,
        "usage": Usage,
    }
    return strategies[name]()


# --- cooldowns ---------------------------------------------------------------------------


class Cooldowns(Protocol):
    """Which deployments rest now; shared by every node when backed by Redis."""

    async def cool(self, key: str, seconds: float) -> None: ...
    async def cooling(self, keys: Sequence[str]) -> set[str]: ...


class MemoryCooldowns:
    def __init__(self, clock: Clock = time.monotonic):
        self.clock = clock
        self.until: dict[str, float] = {}

    async def cool(self, key: str, seconds: float) -> None:
        self.until[key] = self.clock() + seconds

    async def cooling(self, keys: Sequence[str]) -> set[str]:
        now = self.clock()
        return {k for k in keys if self.until.get(k, 0.0) > now}


class RedisCooldowns:
    """A key per resting deployment, expiring when the rest ends. If Redis does not answer,
    this node falls back to its own memory rather than failing the call."""

    def __init__(self, url: str, prefix: str):
        import redis.asyncio as redis

        self.redis = redis.Redis.from_url(url)
        self.prefix = prefix
        self.local = MemoryCooldowns()

    async def cool(self, key: str, seconds: float) -> None:
        from redis.exceptions import RedisError

        await self.local.cool(key, seconds)
        with contextlib.suppress(RedisError):
            await self.redis.set(self.prefix + key, b"1", px=max(int(seconds * 1000), 1))

    async def cooling(self, keys: Sequence[str]) -> set[str]:
        from redis.exceptions import RedisError

        if not keys:
            return set()
        try:
            values = await self.redis.mget([self.prefix + k for k in keys])
        except RedisError:
            return await self.local.cooling(keys)
        return {k for k, v in zip(keys, values, strict=True) if v is not None}

    async def close(self) -> None:
        await self.redis.aclose()


def cooldowns_for(redis_url: str | None, namespace: str) -> Cooldowns:
    """Shared through Redis when the platform has one, else this process's memory."""
    if redis_url:
        return RedisCooldowns(redis_url, f"{namespace}:cooldown:")
    return MemoryCooldowns()


def key_envs(provider: Any) -> list[str]:
    """The ``api_key_env`` names a provider (or each of its deployments) gives."""
    nested = getattr(provider, "deployments", None)
    if nested is not None:
        return [env for d in nested for env in key_envs(d.provider)]
    env = getattr(provider, "api_key_env", None)
    return [env] if env else []
