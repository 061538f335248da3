"""Event log backends, picked from a URL."""

from __future__ import annotations

from pathlib import Path

from meshgate.core.urls import check_scheme
from meshgate.events.base import EventLog

SCHEMES = ("sqlite", "nats", "tls", "redis", "rediss", "rabbitmq-stream")


def open_event_log(
    url: str | None,
    *,
    data_dir: Path,
    namespace: str,
    poll_interval: float = 0.2,
    duplicate_window_seconds: float = 3600.0,
    timeout: float = 1.0,
    key: str = "events.url",
) -> EventLog:
    """``sqlite:///path`` (default ``<data_dir>/events.db``), ``nats://...``, ``redis://...``
    or ``rabbitmq-stream://...``."""
    url = url or f"sqlite:///{Path(data_dir) / 'events.db'}"
    scheme = check_scheme(url, SCHEMES, key=key)
    if scheme == "sqlite":
        from meshgate.events.backends.sqlite import SqliteEventLog

        path = url.removeprefix("sqlite://").removeprefix("/") or ":memory:"
        return SqliteEventLog(path, poll_interval=poll_interval)
    if scheme in ("nats", "tls"):
        from meshgate.events.backends.nats import NatsEventLog

        return NatsEventLog(
            url,
            namespace=namespace,
            poll_interval=poll_interval,
            duplicate_window_seconds=duplicate_window_seconds,
            timeout=timeout,
        )
    if scheme == "rabbitmq-stream":
        from meshgate.events.backends.rabbitmq import RabbitStreamEventLog

        return RabbitStreamEventLog(url, namespace=namespace, poll_interval=poll_interval)
    from meshgate.events.backends.redis import RedisEventLog

    return RedisEventLog(url, namespace=namespace, poll_interval=poll_interval, timeout=timeout)
