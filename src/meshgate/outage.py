"""The failure policy every network backend shares (Redis, NATS, PostgreSQL).

- Every call to a backend is bounded by one setting, ``backend_timeout_seconds`` (1 s by
  default): a dead or frozen backend costs a request at most that long, never a hang.
- A failure is a :class:`BackendUnavailable` (503 with ``Retry-After``) naming the backend by
  its role, never by its address: the driver's message, which names hosts and ports, goes to
  the log only, at most once per backend every few seconds so an outage under load does not
  flood it.
- Nothing connects at construction and ``start`` never fails for a backend that is down: the
  process starts, ``/readyz`` names what is missing, and the next call after the backend's
  return reconnects.
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.retry import Retry

from meshgate.errors import BackendUnavailable

log = logging.getLogger("meshgate.backends")
DEFAULT_TIMEOUT = 1.0
LOG_EVERY_SECONDS = 5.0
_last_logged: dict[str, float] = {}
_USERINFO = re.compile(r"(?<=://)([^/@\s:]*):[^/@\s]*@")  # user:password@ of a URL
_KEYWORD = re.compile(r"(?<=password=)[^\s&'\"]+", re.IGNORECASE)  # a conninfo's password=


def without_secrets(message: str) -> str:
    """``message`` (a driver's, which may quote a connection string) without passwords."""
    return _KEYWORD.sub("***", _USERINFO.sub(r"\1:***@", message))


def reason(exc: BaseException) -> str:
    """What went wrong, for the log: the deepest cause's message, without passwords."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return without_secrets(str(exc) or type(exc).__name__)


def unavailable(what: str, cause: BaseException | str | None = None) -> BackendUnavailable:
    """The 503 for ``what`` (a role such as "event log (NATS)"); ``cause`` is only logged."""
    if cause is not None:
        now = time.monotonic()
        if now - _last_logged.get(what, -LOG_EVERY_SECONDS) >= LOG_EVERY_SECONDS:
            _last_logged[what] = now
            said = cause if isinstance(cause, str) else str(cause) or type(cause).__name__
            log.warning("%s is unavailable: %s", what, without_secrets(said))
    return BackendUnavailable(f"{what} is unavailable; retry later")


def redis_client(url: str, *, timeout: float = DEFAULT_TIMEOUT, **kwargs: Any) -> aioredis.Redis:
    """A Redis client whose every command answers or fails within ``timeout``.

    No retries: redis-py's default (three, with backoff) would multiply the bound. A pooled
    connection that died with the server is replaced before use by the pool itself.
    """
    return aioredis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
        **kwargs,
    )
