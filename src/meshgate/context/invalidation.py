"""Invalidation of every process's cache when context changes: Redis pub/sub between nodes.

A write invalidates the writer's own cache directly, then publishes the key; every other
node drops it on receipt. Pub/sub delivers at most once, so when the subscription breaks the
node clears its whole cache and resubscribes, and cache entries expire on their own anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from typing import Protocol

import redis.asyncio as redis
from redis.exceptions import RedisError

from meshgate.context.cache import ContextCache, Key

log = logging.getLogger("meshgate.context")
SEP = "\x1f"


class InvalidationBus(Protocol):
    async def start(self) -> None: ...

    async def publish(self, key: Key) -> None: ...

    async def close(self) -> None: ...


class LocalBus:
    """One process: the writer's own invalidation is all there is to do."""

    async def start(self) -> None:
        pass

    async def publish(self, key: Key) -> None:
        pass

    async def close(self) -> None:
        pass


class RedisBus:
    def __init__(self, url: str, channel: str, cache: ContextCache):
        self.node = secrets.token_hex(6)
        # Named, so an operator (or a test) can tell this node's subscription apart.
        self.client_name = f"{channel.replace(':', '-')}-{self.node}"
        self._redis = redis.Redis.from_url(url, client_name=self.client_name)
        self.channel = channel
        self.cache = cache
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="context-invalidation")
        # Serve only once subscribed: a write elsewhere must never be missed silently.
        await asyncio.wait_for(self._subscribed.wait(), timeout=5)

    async def publish(self, key: Key) -> None:
        message = SEP.join((self.node, *key))
        try:
            await self._redis.publish(self.channel, message)
        except RedisError as exc:
            # The write itself succeeded; other nodes catch up when their entries expire.
            log.warning("context invalidation not published: %s", exc)

    async def _listen(self) -> None:
        delay = 0.1
        while True:
            pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self.cache.clear()
                self._subscribed.set()
                delay = 0.1
                async for message in pubsub.listen():
                    self._on(message.get("data"))
            except (RedisError, OSError) as exc:
                log.warning("context invalidation channel lost (%s); retrying", exc)
                self.cache.clear()
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    def _on(self, data: object) -> None:
        if not isinstance(data, bytes):
            return
        parts = data.decode(errors="replace").split(SEP)
        if len(parts) == 4 and parts[0] != self.node:
            self.cache.invalidate((parts[1], parts[2], parts[3]))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._redis.aclose()
