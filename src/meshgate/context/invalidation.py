"""Invalidation of every process's cache when context changes: Redis pub/sub between nodes.

A write invalidates the writer's own cache directly, then publishes the key; every other
node drops it on receipt. Pub/sub delivers at most once, so when the subscription breaks the
node clears its whole cache and resubscribes, and cache entries expire on their own anyway.
While the node is not subscribed (Redis down, at start or later) its cache is off: every read
goes to the store, so a write elsewhere is never missed.
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
from meshgate.outage import DEFAULT_TIMEOUT, redis_client

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
    def __init__(
        self, url: str, channel: str, cache: ContextCache, *, timeout: float = DEFAULT_TIMEOUT
    ):
        self.node = secrets.token_hex(6)
        # Named, so an operator (or a test) can tell this node's subscription apart.
        self.client_name = f"{channel.replace(':', '-')}-{self.node}"
        self._redis = redis_client(url, timeout=timeout)
        # The subscriber waits for messages as long as there are none: no read timeout.
        self._subscriber = redis.Redis.from_url(
            url, client_name=self.client_name, socket_connect_timeout=timeout
        )
        self.timeout = timeout
        self.channel = channel
        self.cache = cache
        self._cache_size = cache.size
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()

    async def start(self) -> None:
        self._cache_size = self.cache.size
        self.cache.size = 0  # on once subscribed
        self._task = asyncio.create_task(self._listen(), name="context-invalidation")
        # Normally subscribed at once; a Redis that is down must not hold the start up.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), timeout=self.timeout)

    async def publish(self, key: Key) -> None:
        message = SEP.join((self.node, *key))
        try:
            await self._redis.publish(self.channel, message)
        except (RedisError, OSError) as exc:
            # The write itself succeeded; other nodes catch up when their entries expire.
            log.warning("context invalidation not published: %s", exc)

    async def _listen(self) -> None:
        delay = 0.1
        while True:
            pubsub = self._subscriber.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self.cache.clear()
                self.cache.size = self._cache_size
                self._subscribed.set()
                delay = 0.1
                async for message in pubsub.listen():
                    self._on(message.get("data"))
            except (RedisError, OSError) as exc:
                if self._subscribed.is_set():
                    log.warning("context invalidation channel lost (%s); retrying", exc)
                self._subscribed.clear()
                self.cache.size = 0
                self.cache.clear()
            finally:
                with contextlib.suppress(Exception):
                    # redis-py leaves PubSub.aclose unannotated.
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

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
        await self._subscriber.aclose()
