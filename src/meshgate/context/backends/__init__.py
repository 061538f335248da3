"""Backends of the context store, picked from a URL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from meshgate.context.base import ContextStore
from meshgate.core.urls import check_scheme

SCHEMES = ("memory", "sqlite", "redis", "rediss")


def open_context_store(
    url: str,
    *,
    namespace: str = "mg",
    clock: Callable[[], float] | None = None,
    timeout: float = 1.0,
    key: str = "context.url",
) -> ContextStore:
    """``memory://``, ``sqlite:///path/context.db`` or ``redis://host:port/db``."""
    scheme = check_scheme(url, SCHEMES, key=key)
    if scheme == "memory":
        from meshgate.context.backends.memory import MemoryContextStore

        return MemoryContextStore(clock=clock)
    if scheme == "sqlite":
        from meshgate.context.backends.sqlite import SqliteContextStore

        return SqliteContextStore(
            Path(url.removeprefix("sqlite://").removeprefix("/")), clock=clock
        )
    from meshgate.context.backends.redis import RedisContextStore

    return RedisContextStore(url, prefix=f"{namespace}:ctx:", clock=clock, timeout=timeout)


__all__ = ["ContextStore", "open_context_store"]
