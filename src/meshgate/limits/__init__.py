"""Rate limiting: a port, GCRA, memory and Redis backends."""

from meshgate.limits.base import Bucket, Decision, Limiter


def open_limiter(url: str, *, namespace: str = "mg") -> Limiter:
    """``memory://`` (one process) or ``redis://`` (shared by every process)."""
    scheme = url.split(":", 1)[0]
    if scheme == "memory":
        from meshgate.limits.memory import MemoryLimiter

        return MemoryLimiter()
    if scheme in ("redis", "rediss"):
        from meshgate.limits.redis import RedisLimiter

        return RedisLimiter(url, prefix=f"{namespace}:rl:")
    raise ValueError(f"no limiter backend for {scheme!r}")


__all__ = ["Bucket", "Decision", "Limiter", "open_limiter"]
