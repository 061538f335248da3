"""Limits at the edge: what one client may hold of the server before any route runs.

uvicorn's httptools protocol with a guard around it. uvicorn bounds idle keep-alive time
itself, but neither the size or count of a request's headers, nor the time a client takes to
send them or its body, nor the connections one client holds. Here:

- the request head (request line and headers) is refused with 431 once it passes
  ``max_header_bytes`` or ``max_headers`` lines, so the parser never buffers more than that
  plus one read;
- a head not complete ``header_timeout_seconds`` after its first byte (or after the
  connection opened) is answered 408 and the connection closed (slowloris);
- a body that stays silent ``body_timeout_seconds`` closes the connection;
- one client address holds at most ``max_connections_per_client`` connections and the
  process at most ``max_connections``; more are answered 503 and closed;
- a connection serves ``max_requests_per_connection`` requests, then closes.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections import Counter
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from meshgate.security.config import EdgeConfig

log = logging.getLogger("meshgate.security")
REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large", 503: b"Busy"}
_peers: Counter[str] = Counter()
"""Open connections per client address in this process."""


def protocol_for(edge: EdgeConfig) -> Any:
    """What uvicorn's ``http=`` takes: the guarded protocol with these limits (picklable,
    so every worker process gets the same)."""
    return functools.partial(EdgeProtocol, edge=edge)


def refusal(status: int, detail: str) -> bytes:
    body = orjson.dumps(
        {
            "type": "https://meshgate.dev/problems/edge-limit",
            "title": REASONS[status].decode(),
            "status": status,
            "detail": detail,
        }
    )
    head = (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/problem+json\r\n"
        b"content-length: %d\r\nconnection: close\r\n\r\n" % (status, REASONS[status], len(body))
    )
    return head + body


class EdgeProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, edge: EdgeConfig, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.edge = edge
        self._peer: str | None = None
        self._in_head = True
        self._head_bytes = 0
        self._header_lines = 0
        self._header_size = 0
        self._too_large: str | None = None
        self._requests = 0
        self._timer: asyncio.TimerHandle | None = None

    # --- connections ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._peer = self.client[0] if self.client else "?"
        _peers[self._peer] += 1
        if _peers[self._peer] > self.edge.max_connections_per_client:
            self._refuse(503, "too many open connections from this client")
        elif len(self.connections) > self.edge.max_connections:
            self._refuse(503, "the server holds too many connections")
        else:
            self._arm(self.edge.header_timeout_seconds, self._head_timed_out)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._peer is not None:
            _peers[self._peer] -= 1
            if _peers[self._peer] <= 0:
                del _peers[self._peer]
            self._peer = None
        super().connection_lost(exc)

    # --- reading ----------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():
            return
        if self._in_head:
            if self._head_bytes == 0 and self._timer is None:
                self._arm(self.edge.header_timeout_seconds, self._head_timed_out)
            self._head_bytes += len(data)
        elif self._timer is not None:
            self._arm(self.edge.body_timeout_seconds, self._body_timed_out)
        super().data_received(data)
        if (
            self._too_large is None
            and self._in_head
            and self._head_bytes > self.edge.max_header_bytes
        ):
            self._too_large = f"request headers exceed {self.edge.max_header_bytes} bytes"
        if self._too_large is not None and not self.transport.is_closing():
            self._refuse(431, self._too_large)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_lines = 0
        self._header_size = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_lines += 1
        self._header_size += len(name) + len(value) + 4
        if self._header_lines > self.edge.max_headers:
            self._too_large = f"more than {self.edge.max_headers} request headers"
        elif self._header_size > self.edge.max_header_bytes:
            self._too_large = f"request headers exceed {self.edge.max_header_bytes} bytes"
        if self._too_large is None:
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._too_large is not None:
            return
        self._in_head = False
        self._disarm()
        self._requests += 1
        super().on_headers_complete()
        if self._requests >= self.edge.max_requests_per_connection and self.cycle is not None:
            self.cycle.keep_alive = False
        if self.cycle is not None and self.cycle.more_body:
            self._arm(self.edge.body_timeout_seconds, self._body_timed_out)

    def on_body(self, body: bytes) -> None:
        if self._too_large is None:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if self._too_large is not None:
            return
        self._disarm()
        self._in_head = True
        self._head_bytes = 0
        super().on_message_complete()

    # --- timers -----------------------------------------------------------------------

    def _arm(self, seconds: float, then: Any) -> None:
        self._disarm()
        self._timer = self.loop.call_later(seconds, then)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _head_timed_out(self) -> None:
        self._timer = None
        if self._in_head and not self.transport.is_closing():
            busy = self.cycle is not None and not self.cycle.response_complete
            if busy:  # the previous response is still being written; not this client's fault
                self._arm(self.edge.header_timeout_seconds, self._head_timed_out)
            elif self._head_bytes == 0:
                self.transport.close()  # opened and said nothing: nothing to answer
            else:
                self._refuse(408, "the request head was not sent in time")

    def _body_timed_out(self) -> None:
        self._timer = None
        if self.flow is not None and self.flow.read_paused:
            # The application is slow to read, not the client to send.
            self._arm(self.edge.body_timeout_seconds, self._body_timed_out)
            return
        log.info("closing a connection whose request body stalled (%s)", self._peer)
        self.transport.close()

    def _refuse(self, status: int, detail: str) -> None:
        log.info("edge refused a request from %s: %s", self._peer, detail)
        self._disarm()
        if self.cycle is None or self.cycle.response_complete:
            self.transport.write(refusal(status, detail))
        self.transport.close()
