"""The Context Mesh's parts, built for the composition root: store, cache, bus, service."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from fastapi import APIRouter

from meshgate.config import Settings
from meshgate.context.backends import open_context_store
from meshgate.context.cache import ContextCache
from meshgate.context.handle import HandleSigner, load_secret
from meshgate.context.invalidation import InvalidationBus, LocalBus, RedisBus
from meshgate.context.notify import Events, Notifier
from meshgate.context.ports import ErasureListener, RegisteredPolicies
from meshgate.context.routes import HOT, router
from meshgate.context.service import ContextService
from meshgate.core.routing import HotRoute
from meshgate.governance.ports import AuditRecorder

log = logging.getLogger("meshgate.context")
ROUTERS: list[APIRouter] = [router]
HOT_ROUTES: list[HotRoute] = HOT


def store_url(settings: Settings) -> str:
    """``context.url``; else Redis when ``redis_url`` is set; else SQLite in data_dir."""
    if settings.context.url:
        return settings.context.url
    if settings.redis_url:
        return settings.redis_url
    return f"sqlite:///{settings.data_dir.absolute() / 'context.db'}"


def build_context(
    settings: Settings,
    *,
    events: Events,
    audit: AuditRecorder,
    registered: RegisteredPolicies,
    clock: Callable[[], float] | None = None,
    erasure: Sequence[ErasureListener] = (),
) -> ContextService:
    """The context service over the configured store, not yet started. ``clock`` is the wall
    clock of sessions and profiles (tests inject one to expire sessions); ``erasure`` are the
    domains told of each erased user."""
    config = settings.context
    url = store_url(settings)
    timeout = settings.backend_timeout_seconds
    store = open_context_store(url, namespace=settings.namespace, clock=clock, timeout=timeout)
    bus_url = url if url.startswith(("redis:", "rediss:")) else settings.redis_url
    size = config.cache_size
    if bus_url is None and settings.workers > 1 and not url.startswith("memory:"):
        # Workers share the store but could not tell each other about writes.
        log.warning("context cache off: %d workers and no Redis to invalidate it", settings.workers)
        size = 0
    cache = ContextCache(size, config.cache_ttl_seconds)
    bus: InvalidationBus = (
        RedisBus(bus_url, f"{settings.namespace}:ctx:invalidate", cache, timeout=timeout)
        if bus_url
        else LocalBus()
    )
    secret = (
        config.handle_secret.get_secret_value().encode()
        if config.handle_secret
        else load_secret(settings.data_dir)
    )
    signer = HandleSigner(secret)
    return ContextService(
        store,
        config,
        signer=signer,
        cache=cache,
        bus=bus,
        notifier=Notifier(signer, events, audit),
        registered=registered,
        clock=clock or time.time,
        erasure=erasure,
    )
