"""The response cache, opt-in per model: ``exact`` mode keys on the normalised request,
``semantic`` mode also serves a stored answer to a question that means the same.

The key is a digest of the tenant, the model, the version that would serve and the request
as the upstream would see it: messages (with the context the platform injected, and with
personal data already replaced by placeholders) and every parameter, minus what does not
change the answer (``stream``, ``user``). So no answer crosses tenants, nor users whose
context differed. What is stored is the upstream's answer with its placeholders; each hit
puts back its own caller's values. In memory on the embedded default, Redis on scale-out.

Each answer is also filed under its holders: the user and the session whose request (and
injected context) it was stored for, as keyed digests. Erasing a user deletes every answer
filed under them or under one of their sessions, so none is served again; for a while after,
an answer to a request that was in flight at the erasure is not stored under them either.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Literal, Protocol

import orjson
from pydantic import Field, model_validator
from redis.exceptions import RedisError

from meshgate.models.config import NAME
from meshgate.outage import redis_client, unavailable
from meshgate.strictjson import RequestBody

IGNORED = ("stream", "stream_options", "user")
GONE_SECONDS = 900
"""How long an erased holder refuses new answers: longer than any call in flight takes."""


class CacheSet(RequestBody):
    mode: Literal["exact", "semantic", "off"] = Field(
        description="exact: identical normalised requests share an answer; semantic: also a"
        " request whose last user message is close in meaning (cosine of embeddings) to a"
        " stored one, everything else equal; off: no cache."
    )
    ttl_seconds: int = Field(300, ge=1, le=30 * 86_400, description="How long an answer lives.")
    embedding_model: str | None = Field(
        None,
        pattern=NAME,
        description="semantic: the Meshgate embedding model (task embedding, same tenant) that"
        " embeds the last user message.",
    )
    similarity: float = Field(
        0.95,
        ge=0.5,
        le=1.0,
        description="semantic: the least cosine similarity at which a stored answer is served.",
    )

    @model_validator(mode="after")
    def _semantic_needs_a_model(self) -> CacheSet:
        if self.mode == "semantic" and self.embedding_model is None:
            raise ValueError("embedding_model is required when mode is semantic")
        return self


def cache_key(tenant: str, model: str, version: str, request: dict[str, Any]) -> str:
    kept = {k: v for k, v in request.items() if k not in IGNORED}
    raw = orjson.dumps([tenant, model, version, kept], option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(raw).hexdigest()


def holders_of(tenant: str, user_id: str | None, session_id: str | None) -> list[str]:
    """The digests an answer stored for this caller is filed under (never the ids)."""
    found = [("u", user_id), ("s", session_id)]
    return [holder(tenant, kind, value) for kind, value in found if value is not None]


def holder(tenant: str, kind: str, value: str) -> str:
    return hashlib.sha256(f"{tenant}\x1f{kind}\x1f{value}".encode()).hexdigest()[:40]


class AnswerCache(Protocol):
    async def get(self, key: str) -> bytes | None: ...
    async def put(
        self, key: str, answer: bytes, ttl_seconds: int, holders: Sequence[str] = ()
    ) -> None: ...
    async def forget_holders(self, holders: Sequence[str]) -> list[str]:
        """Delete every answer filed under one of ``holders``; returns their keys."""
        ...

    async def close(self) -> None: ...


class MemoryCache:
    """Least recently used first out once ``limit`` answers are held."""

    def __init__(self, limit: int = 10_000):
        self.limit = limit
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self._filed: dict[str, set[str]] = {}
        """holder -> the keys of the answers filed under it"""
        self._holders: dict[str, set[str]] = {}
        """key -> the holders its answer is filed under"""
        self._gone: dict[str, float] = {}
        """erased holder -> until when it refuses answers"""

    async def get(self, key: str) -> bytes | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[0] < time.monotonic():
            self._drop(key)
            return None
        self._items.move_to_end(key)
        return item[1]

    async def put(
        self, key: str, answer: bytes, ttl_seconds: int, holders: Sequence[str] = ()
    ) -> None:
        now = time.monotonic()
        if any(self._gone.get(h, 0.0) > now for h in holders):
            return  # asked before its user was erased, answered after
        self._items[key] = (now + ttl_seconds, answer)
        self._items.move_to_end(key)
        for h in holders:
            self._filed.setdefault(h, set()).add(key)
            self._holders.setdefault(key, set()).add(h)
        while len(self._items) > self.limit:
            self._drop(next(iter(self._items)))

    async def forget_holders(self, holders: Sequence[str]) -> list[str]:
        now = time.monotonic()
        self._gone = {h: t for h, t in self._gone.items() if t > now}
        self._gone.update({h: now + GONE_SECONDS for h in holders})
        keys = sorted({key for h in holders for key in self._filed.get(h, ())})
        for key in keys:
            self._drop(key)
        return keys

    def _drop(self, key: str) -> None:
        self._items.pop(key, None)
        for h in self._holders.pop(key, ()):
            filed = self._filed.get(h)
            if filed is not None:
                filed.discard(key)
                if not filed:
                    del self._filed[h]

    async def close(self) -> None:
        pass


# KEYS: the holder's set; ARGV: the answer's key, its TTL. The set lives as long as its
# longest-lived answer.
FILE = """
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('TTL', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 1
"""


class RedisCache:
    """A miss when Redis does not answer: the cache only ever saves work. Erasure is the
    exception: it must reach every answer, so a failure there is raised."""

    def __init__(self, url: str, *, prefix: str):
        self._redis = redis_client(url)
        self._prefix = prefix
        self._file = self._redis.register_script(FILE)

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self._redis.get(self._prefix + key)
        except (RedisError, OSError):
            return None
        return value if isinstance(value, bytes) else None

    async def put(
        self, key: str, answer: bytes, ttl_seconds: int, holders: Sequence[str] = ()
    ) -> None:
        with contextlib.suppress(RedisError, OSError):
            # Filed first, and checked for an erasure last: an erasure either finds the answer
            # through its holders, or this sees the erasure's mark and takes the answer back.
            for h in holders:
                await self._file(keys=[self._held(h)], args=[key, ttl_seconds])
            await self._redis.set(self._prefix + key, answer, ex=ttl_seconds)
            if holders and await self._redis.exists(*(self._gone(h) for h in holders)):
                await self._redis.delete(self._prefix + key)

    async def forget_holders(self, holders: Sequence[str]) -> list[str]:
        keys: set[str] = set()
        try:
            for h in holders:
                await self._redis.set(self._gone(h), b"1", ex=GONE_SECONDS)
            for h in holders:
                members = await self._redis.smembers(self._held(h))
                keys |= {m.decode() for m in members if isinstance(m, bytes)}
            if keys:
                await self._redis.delete(*(self._prefix + key for key in keys))
            if holders:
                await self._redis.delete(*(self._held(h) for h in holders))
        except (RedisError, OSError) as exc:
            raise unavailable("the response cache (Redis)", exc) from exc
        return sorted(keys)

    def _held(self, holder: str) -> str:
        return f"{self._prefix}held:{holder}"

    def _gone(self, holder: str) -> str:
        return f"{self._prefix}gone:{holder}"

    async def close(self) -> None:
        await self._redis.aclose()


def open_cache(url: str, *, namespace: str) -> AnswerCache:
    if url.startswith(("redis://", "rediss://")):
        return RedisCache(url, prefix=f"{namespace}:answers:")
    return MemoryCache()
