"""The semantic side of the response cache: the embeddings of the questions answered.

A partition is everything of a request but the text of its last user message: tenant, model,
version, parameters, earlier turns and the context the platform injected. So a semantic hit
never crosses tenants, nor users whose context differed; only the last question may differ,
and only by wording. Each partition keeps at most ``ENTRIES`` unit vectors, and a lookup is
one matrix product over them. The answers themselves live in the answer cache under
``<partition>:<entry>``, with their TTL; an entry whose answer expired is dropped on sight.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import OrderedDict
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from redis.exceptions import RedisError

from meshgate.economics.cache import cache_key
from meshgate.outage import redis_client

Vector = npt.NDArray[np.float32]
ENTRIES = 256
"""Stored questions per partition; the oldest goes first."""
PARTITIONS = 10_000
"""Partitions one process keeps in memory on the embedded default."""
MAX_DIMENSIONS = 8192


def unit(values: Any) -> Vector | None:
    """The embedding as a unit vector, or None when it is not a usable one."""
    if not isinstance(values, list) or not 0 < len(values) <= MAX_DIMENSIONS:
        return None
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        return None
    vector = np.asarray(values, dtype=np.float32)
    norm = float(np.linalg.norm(vector))
    if not math.isfinite(norm) or norm == 0.0:
        return None
    return vector / norm


def split_question(request: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """(the last user message's text, the request with that text taken out)."""
    messages = request.get("messages")
    if not isinstance(messages, list):
        return None
    for i in range(len(messages) - 1, -1, -1):
        message = messages[i]
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if not isinstance(content, str) or not content.strip():
                return None
            rest = [*messages[:i], {**message, "content": ""}, *messages[i + 1 :]]
            return content, {**request, "messages": rest}
    return None


def partition_of(tenant: str, model: str, version: str, rest: dict[str, Any]) -> str:
    return "s" + cache_key(tenant, model, version, rest)


def answer_key(partition: str, entry: str) -> str:
    return f"{partition}:{entry}"


class SemanticIndex(Protocol):
    async def nearest(self, partition: str, vector: Vector) -> tuple[str, float] | None:
        """The closest stored entry and its cosine similarity, if the partition has any."""
        ...

    async def add(self, partition: str, entry: str, vector: Vector, ttl_seconds: int) -> None: ...
    async def forget(self, partition: str, entry: str) -> None: ...
    async def close(self) -> None: ...


def best(entries: list[tuple[str, Vector]], vector: Vector) -> tuple[str, float] | None:
    same_size = [(entry, v) for entry, v in entries if v.shape == vector.shape]
    if not same_size:
        return None
    scores = np.stack([v for _, v in same_size]) @ vector
    i = int(np.argmax(scores))
    return same_size[i][0], float(scores[i])


class MemoryIndex:
    def __init__(self, clock: Any = time.monotonic):
        self._clock = clock
        self._partitions: OrderedDict[str, OrderedDict[str, tuple[float, Vector]]] = OrderedDict()

    async def nearest(self, partition: str, vector: Vector) -> tuple[str, float] | None:
        entries = self._partitions.get(partition)
        if entries is None:
            return None
        now = self._clock()
        for entry in [e for e, (expires, _) in entries.items() if expires < now]:
            del entries[entry]
        return best([(e, v) for e, (_, v) in entries.items()], vector)

    async def add(self, partition: str, entry: str, vector: Vector, ttl_seconds: int) -> None:
        entries = self._partitions.setdefault(partition, OrderedDict())
        self._partitions.move_to_end(partition)
        entries[entry] = (self._clock() + ttl_seconds, vector)
        while len(entries) > ENTRIES:
            entries.popitem(last=False)
        while len(self._partitions) > PARTITIONS:
            self._partitions.popitem(last=False)

    async def forget(self, partition: str, entry: str) -> None:
        entries = self._partitions.get(partition)
        if entries is not None:
            entries.pop(entry, None)

    async def close(self) -> None:
        pass


class RedisIndex:
    """One hash per partition (entry -> float32 bytes); a miss when Redis does not answer."""

    def __init__(self, url: str, *, prefix: str):
        self._redis = redis_client(url)
        self._prefix = prefix

    async def nearest(self, partition: str, vector: Vector) -> tuple[str, float] | None:
        try:
            stored = await self._redis.hgetall(self._prefix + partition)
        except (RedisError, OSError):
            return None
        entries = [
            (entry.decode(), np.frombuffer(raw, dtype=np.float32))
            for entry, raw in stored.items()
            if isinstance(entry, bytes) and isinstance(raw, bytes) and len(raw) % 4 == 0
        ]
        return best(entries, vector)

    async def add(self, partition: str, entry: str, vector: Vector, ttl_seconds: int) -> None:
        key = self._prefix + partition
        with contextlib.suppress(RedisError, OSError):
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.hset(key, entry, vector.astype(np.float32).tobytes())
                pipe.expire(key, ttl_seconds)
                pipe.hlen(key)
                *_, size = await pipe.execute()
            if size > ENTRIES:
                # Any one of them: the answers expire on their own, this only bounds the scan.
                extra = await self._redis.hrandfield(key, int(size) - ENTRIES)
                if extra:
                    await self._redis.hdel(key, *extra)

    async def forget(self, partition: str, entry: str) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._redis.hdel(self._prefix + partition, entry)

    async def close(self) -> None:
        await self._redis.aclose()


def open_index(url: str, *, namespace: str) -> SemanticIndex:
    if url.startswith(("redis://", "rediss://")):
        return RedisIndex(url, prefix=f"{namespace}:questions:")
    return MemoryIndex()
