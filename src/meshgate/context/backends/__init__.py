"""Backends of the context store, picked from a URL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from meshgate.context.base import ContextStore


def open_context_store(
    url: str,
    *,
    namespace: str = "mg",
    clock: Callable[[], float] | None = None,
    timeout: float = 1.0,
) -> ContextStore:
    """``memory://``, ``sqlite:///path/context.db`` or ``redis://host:port/db``."""
    scheme = url.split(":", 1)[0]
    if scheme == "memory":
        from meshgate.context.backends.memory import MemoryContextStore

        return MemoryContextStore(clock=clock)
    if scheme == "sqlite":
        from meshgate.context.backends.sqlite import SqliteContextStore

        return SqliteContextStore(
            Path(url.removeprefix("sqlite://").removeprefix("/")), clock=clock
        )
    if scheme in ("redis", "rediss"):
        from meshgate.context.backends.redis import RedisContextStore

        return RedisContextStore(url, prefix=f"{namespace}:ctx:", clock=clock, timeout=timeout)
    raise ValueError(f"no context store backend for {scheme!r}")


__all__ = ["ContextStore", "open_context_store"]
