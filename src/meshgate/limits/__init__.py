"""Rate limiting: a port, GCRA, memory and Redis backends."""

from meshgate.core.urls import check_scheme
from meshgate.limits.base import Bucket, Decision, Limiter

SCHEMES = ("memory", "redis", "rediss")


def open_limiter(
    url: str,
    *,
    namespace: str = "mg",
    timeout: float = 1.0,
    fallback: bool = True,
    key: str = "limiter_url",
) -> Limiter:
    """``memory://`` (one process) or ``redis://`` (shared by every process); a shared
    limiter falls back to a per-process one while Redis is away (``limits/fallback.py``)."""
    scheme = check_scheme(url, SCHEMES, key=key)
    if scheme == "memory":
        from meshgate.limits.memory import MemoryLimiter

        return MemoryLimiter()
    from meshgate.limits.fallback import FallbackLimiter
    from meshgate.limits.redis import RedisLimiter

    shared = RedisLimiter(url, prefix=f"{namespace}:rl:", timeout=timeout)
    return FallbackLimiter(shared) if fallback else shared


__all__ = ["Bucket", "Decision", "Limiter", "open_limiter"]
