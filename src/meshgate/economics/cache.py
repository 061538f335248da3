"""The response cache, opt-in per model: ``exact`` mode keys on the normalised request,
``semantic`` mode also serves a stored answer to a question that means the same.

The key is a digest of the tenant, the model, the version that would serve and the request
as the upstream would see it: messages (with the context the platform injected, and with
personal data already replaced by placeholders) and every parameter, minus what does not
change the answer (``stream``, ``user``). So no answer crosses tenants, nor users whose
context differed. What is stored is the upstream's answer with its placeholders; each hit
puts back its own caller's values. In memory on the embedded default, Redis on scale-out.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections import OrderedDict
from typing import Any, Literal, Protocol

import orjson
from pydantic import BaseModel, ConfigDict, Field, model_validator
from redis.exceptions import RedisError

from meshgate.models.config import NAME
from meshgate.outage import redis_client

IGNORED = ("stream", "stream_options", "user")


class CacheSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

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


class AnswerCache(Protocol):
    async def get(self, key: str) -> bytes | None: ...
    async def put(self, key: str, answer: bytes, ttl_seconds: int) -> None: ...
    async def close(self) -> None: ...


class MemoryCache:
    """Least recently used first out once ``limit`` answers are held."""

    def __init__(self, limit: int = 10_000):
        self.limit = limit
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    async def get(self, key: str) -> bytes | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[0] < time.monotonic():
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return item[1]

    async def put(self, key: str, answer: bytes, ttl_seconds: int) -> None:
        self._items[key] = (time.monotonic() + ttl_seconds, answer)
        self._items.move_to_end(key)
        while len(self._items) > self.limit:
            self._items.popitem(last=False)

    async def close(self) -> None:
        pass


class RedisCache:
    """A miss when Redis does not answer: the cache only ever saves work."""

    def __init__(self, url: str, *, prefix: str):
        self._redis = redis_client(url)
        self._prefix = prefix

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self._redis.get(self._prefix + key)
        except (RedisError, OSError):
            return None
        return value if isinstance(value, bytes) else None

    async def put(self, key: str, answer: bytes, ttl_seconds: int) -> None:
        with contextlib.suppress(RedisError, OSError):
            await self._redis.set(self._prefix + key, answer, ex=ttl_seconds)

    async def close(self) -> None:
        await self._redis.aclose()


def open_cache(url: str, *, namespace: str) -> AnswerCache:
    if url.startswith(("redis://", "rediss://")):
        return RedisCache(url, prefix=f"{namespace}:answers:")
    return MemoryCache()
