"""The Context Mesh as a module of the platform: picks the store, wires cache and bus."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from fastapi import APIRouter

from meshgate.context.backends import ContextStore, open_context_store
from meshgate.context.cache import ContextCache
from meshgate.context.handle import HandleSigner, load_secret
from meshgate.context.invalidation import InvalidationBus, LocalBus, RedisBus
from meshgate.context.notify import Notifier
from meshgate.context.service import ContextService
from meshgate.platform import Platform
from meshgate.sql import Migration

if TYPE_CHECKING:
    from meshgate.gateway.fast_routes import HotRoute

log = logging.getLogger("meshgate.context")
PURGE_EVERY_SECONDS = 60.0


def store_url(platform: Platform) -> str:
    """``context.url``; else Redis when ``redis_url`` is set; else SQLite in data_dir."""
    s = platform.settings
    if s.context.url:
        return s.context.url
    if s.redis_url:
        return s.redis_url
    return f"sqlite:///{s.data_dir.absolute() / 'context.db'}"


class ContextModule:
    name = "context"
    migrations: list[Migration] = []

    def __init__(self, *, clock: Callable[[], float] | None = None) -> None:
        self.clock = clock
        """Wall clock of sessions and profiles; tests inject one to expire sessions."""
        self.store: ContextStore | None = None
        self.bus: InvalidationBus | None = None
        self._purger: asyncio.Task[None] | None = None

    def routers(self) -> list[APIRouter]:
        from meshgate.context.routes import router

        return [router]

    def hot_routes(self) -> list[HotRoute]:
        from meshgate.context.routes import HOT

        return HOT

    async def start(self, platform: Platform) -> None:
        settings, config = platform.settings, platform.settings.context
        url = store_url(platform)
        timeout = settings.backend_timeout_seconds
        self.store = open_context_store(
            url, namespace=settings.namespace, clock=self.clock, timeout=timeout
        )
        await self.store.start()
        bus_url = url if url.startswith(("redis:", "rediss:")) else settings.redis_url
        size = config.cache_size
        if bus_url is None and settings.workers > 1 and not url.startswith("memory:"):
            # Workers share the store but could not tell each other about writes.
            log.warning(
                "context cache off: %d workers and no Redis to invalidate it", settings.workers
            )
            size = 0
        cache = ContextCache(size, config.cache_ttl_seconds)
        self.bus = (
            RedisBus(bus_url, f"{settings.namespace}:ctx:invalidate", cache, timeout=timeout)
            if bus_url
            else LocalBus()
        )
        await self.bus.start()
        secret = (
            config.handle_secret.get_secret_value().encode()
            if config.handle_secret
            else load_secret(settings.data_dir)
        )
        signer = HandleSigner(secret)
        platform.context = ContextService(
            self.store,
            config,
            signer=signer,
            cache=cache,
            bus=self.bus,
            notifier=Notifier(signer, platform.events, platform.audit),
            clock=self.clock or time.time,
        )
        platform.checks["context"] = self.store.ping
        self._purger = asyncio.create_task(self._purge(self.store), name="context-purge")

    async def _purge(self, store: ContextStore) -> None:
        """Expired sessions leave the disk too, not just the API."""
        while True:
            await asyncio.sleep(PURGE_EVERY_SECONDS)
            try:
                await store.purge_expired()
            except Exception as exc:
                log.warning("purging expired sessions failed: %s", exc)

    async def close(self) -> None:
        if self._purger is not None:
            self._purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._purger
        if self.bus is not None:
            await self.bus.close()
        if self.store is not None:
            await self.store.close()
