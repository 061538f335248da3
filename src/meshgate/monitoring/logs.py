"""JSON log lines, one object per line, each with the request and trace ids it belongs to.

Lines are formatted where they are logged (so the request's context variables are at hand)
and written to stderr by a background thread, so a slow log sink never stalls the event loop.
At shutdown the platform switches back to direct writes, so nothing logged last is lost.
"""

from __future__ import annotations

import logging
import queue
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from logging.handlers import QueueHandler, QueueListener
from typing import Any

import orjson

LOG_CONTEXT: ContextVar[tuple[str, str] | None] = ContextVar("meshgate_log_context", default=None)
"""(request id, trace id) of the request being served; set by the access-log middleware."""
RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "fields"}
QUIET_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        current = LOG_CONTEXT.get()
        if current is not None:
            line["request_id"], line["trace_id"] = current
        fields = getattr(record, "fields", None)
        if fields:
            line.update(fields)
        for key, value in record.__dict__.items():
            if key not in RESERVED and not key.startswith("_"):
                line.setdefault(key, value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class _Prepared(QueueHandler):
    """Formats in the logging thread, hands the finished line to the writer thread."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        line = self.format(record)
        return logging.makeLogRecord({"msg": line, "levelno": record.levelno})


class JsonLogging:
    """The process's log setup: JSON lines on stderr through a writer thread."""

    def __init__(self, level: str = "info", stream: Any = None):
        self.stream = stream or sys.stderr
        self.queue: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
        writer = logging.StreamHandler(self.stream)
        self.listener = QueueListener(self.queue, writer)
        self.handler: logging.Handler = _Prepared(self.queue)
        self.handler.setFormatter(JsonFormatter())
        self.level = getattr(logging, level.upper())

    def install(self) -> None:
        root = logging.getLogger()
        root.handlers = [self.handler]
        root.setLevel(self.level)
        for name in QUIET_LOGGERS:
            logger = logging.getLogger(name)
            logger.handlers = []
            logger.propagate = True
        self.listener.start()

    def write_directly(self) -> None:
        """Drain the writer thread and write synchronously from now on (for shutdown)."""
        if self.listener._thread is None:
            return
        self.listener.stop()
        direct = logging.StreamHandler(self.stream)
        direct.setFormatter(JsonFormatter())
        root = logging.getLogger()
        root.handlers = [direct if h is self.handler else h for h in root.handlers]


_installed: list[JsonLogging] = []


def setup_logging(level: str = "info", *, json_lines: bool = True) -> None:
    """Once per process (``meshgate serve`` calls it in each worker)."""
    if _installed:
        return
    if not json_lines:
        logging.basicConfig(level=getattr(logging, level.upper()))
        return
    setup = JsonLogging(level)
    setup.install()
    _installed.append(setup)


def flush_logs() -> None:
    for setup in _installed:
        setup.write_directly()
