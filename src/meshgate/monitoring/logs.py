"""JSON log lines, one object per line, each with the request and trace ids it belongs to.

Lines are formatted where they are logged (so the request's context variables are at hand)
and handed to a writer thread that writes whatever is pending every few milliseconds in one
system call, so neither a slow log sink nor a write per line costs the event loop anything.
At shutdown the platform switches back to direct writes, so nothing logged last is lost.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections import deque
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

import orjson

LOG_CONTEXT: ContextVar[tuple[str, str] | None] = ContextVar("meshgate_log_context", default=None)
"""(request id, trace id) of the request being served; set by the access-log middleware."""
# ``color_message`` is the server's copy of the message with terminal colour codes.
RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {
    "message",
    "asctime",
    "fields",
    "color_message",
}
QUIET_LOGGERS = ("uvicorn", "uvicorn.error")


def timestamp(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": timestamp(record.created),
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


class LineWriter:
    """Finished lines from any thread, written in batches by one background thread."""

    def __init__(self, stream: IO[bytes], interval: float = 0.02):
        self.stream = stream
        self.interval = interval
        self._pending: deque[bytes] = deque()
        self._stop = threading.Event()
        self._direct = False
        self._thread = threading.Thread(target=self._run, name="meshgate-log-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def write(self, line: bytes) -> None:
        """``line`` ends with a newline. Never blocks (until shutdown switches to direct)."""
        if self._direct:
            self.stream.write(line)
            self.stream.flush()
        else:
            self._pending.append(line)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._drain()
        self._drain()

    def _drain(self) -> None:
        lines = []
        pending = self._pending
        while pending:
            lines.append(pending.popleft())
        if lines:
            try:
                self.stream.write(b"".join(lines))
                self.stream.flush()
            except (OSError, ValueError):
                pass  # the sink is gone; there is nowhere left to report it

    def write_directly(self) -> None:
        """Write what is pending, then write synchronously from now on (for shutdown)."""
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join()
        self._direct = True
        self._drain()


class JsonHandler(logging.Handler):
    def __init__(self, writer: LineWriter):
        super().__init__()
        self.writer = writer
        self.setFormatter(JsonFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.writer.write(self.format(record).encode() + b"\n")
        except Exception:
            self.handleError(record)


class JsonLogging:
    """The process's log setup: JSON lines on stderr through a writer thread."""

    def __init__(self, level: str = "info", stream: IO[bytes] | None = None):
        self.writer = LineWriter(stream or sys.stderr.buffer)
        self.handler = JsonHandler(self.writer)
        self.level = getattr(logging, level.upper())

    def install(self) -> None:
        root = logging.getLogger()
        root.handlers = [self.handler]
        root.setLevel(self.level)
        for name in QUIET_LOGGERS:
            logger = logging.getLogger(name)
            logger.handlers = []
            logger.propagate = True
        # The platform writes its own access line; the server's would be a second one per
        # request (and uvicorn logs access whenever that logger has a handler up the tree).
        server_access = logging.getLogger("uvicorn.access")
        server_access.handlers = []
        server_access.propagate = False
        self.writer.start()


_installed: list[JsonLogging] = []


# Libraries' loggers: their INFO lines are routine (a pool growing, a connection made), and
# database drivers log statements with their parameters at DEBUG, which carry key digests and
# personal data. They log warnings and errors only, whatever the platform's level, unless
# monitoring.log_levels names them.
THIRD_PARTY = (
    "aiohttp",
    "aiosqlite",
    "asyncio",
    "httpcore",
    "httpx",
    "mcp",  # a line per MCP request and one at start, beside the access line
    "multipart",
    "nats",
    "opentelemetry",
    "psycopg",
    "psycopg.pool",
    "redis",
    "strawberry",
    "urllib3",
)


def set_levels(named: Mapping[str, str] | None = None) -> None:
    """Libraries' loggers at WARNING, then the levels ``named`` asks for."""
    for name in THIRD_PARTY:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name, level in (named or {}).items():
        logging.getLogger(name).setLevel(level.upper())


def setup_logging(
    level: str = "info", *, json_lines: bool = True, levels: Mapping[str, str] | None = None
) -> None:
    """Once per process (``meshgate serve`` calls it in each worker)."""
    if _installed:
        return
    set_levels(levels)
    if not json_lines:
        logging.basicConfig(level=getattr(logging, level.upper()))
        return
    setup = JsonLogging(level)
    setup.install()
    _installed.append(setup)


def access_writer() -> LineWriter | None:
    """Where access lines go straight to, when JSON logging is set up for this process."""
    if _installed and logging.getLogger("meshgate.access").isEnabledFor(logging.INFO):
        return _installed[0].writer
    return None


def flush_logs() -> None:
    for setup in _installed:
        setup.writer.write_directly()
