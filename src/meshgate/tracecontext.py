"""W3C trace context and baggage, read on the way in and carried to every outbound call.

The gateway stores one :class:`TraceContext` per request in the ASGI scope; providers and
webhooks call :meth:`TraceContext.outbound_headers` so the caller's trace continues upstream.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def new_id(bits: int) -> str:
    """A random hex id for traces, spans and requests.

    Identifiers, not secrets: the process's PRNG (seeded from the OS) spares a system call
    per request that reading the OS's randomness would cost.
    """
    return f"{random.getrandbits(bits):0{bits // 4}x}"


@dataclass(slots=True)
class TraceContext:
    trace_id: str
    parent_id: str | None
    flags: str = "01"
    baggage: str | None = None
    extra_baggage: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_headers(cls, traceparent: str | None, baggage: str | None) -> TraceContext:
        match = TRACEPARENT.match(traceparent) if traceparent else None
        if match and match.group(1) != "0" * 32 and match.group(2) != "0" * 16:
            return cls(match.group(1), match.group(2), match.group(3), baggage)
        return cls(new_id(128), None, "01", baggage)

    def outbound_headers(self) -> dict[str, str]:
        """Headers for one outbound call: a fresh span id under this request's trace."""
        headers = {"traceparent": f"00-{self.trace_id}-{new_id(64)}-{self.flags}"}
        members = [self.baggage] if self.baggage else []
        members += [f"{k}={v}" for k, v in self.extra_baggage.items()]
        if members:
            headers["baggage"] = ",".join(members)
        return headers
