"""Rate limiting: a port, GCRA, memory and Redis backends."""

from meshgate.limits.base import Bucket, Decision, Limiter


def open_limiter(
    url: str, *, namespace: str = "mg", timeout: float = 1.0, fallback: bool = True
) -> Limiter:
    """``memory://`` (one process) or ``redis://`` (shared by every process); a shared
    limiter falls back to a per-process one while Redis is away (``limits/fallback.py``)."""
    scheme = url.split(":", 1)[0]
    if scheme == "memory":
        from meshgate.limits.memory import MemoryLimiter

        return MemoryLimiter()
    if scheme in ("redis", "rediss"):
        from meshgate.limits.fallback import FallbackLimiter
        from meshgate.limits.redis import RedisLimiter

        shared = RedisLimiter(url, prefix=f"{namespace}:rl:", timeout=timeout)
        return FallbackLimiter(shared) if fallback else shared
    raise ValueError(f"no limiter backend for {scheme!r}")


__all__ = ["Bucket", "Decision", "Limiter", "open_limiter"]
