"""What a 5xx answer may say: never where the platform's backends or upstreams live.

Backend and driver messages often name a host, an address, a port, a URL or a file path.
Problem details of server-side failures go to callers of every tenant, so those are replaced
by a placeholder here (the full message stays in the server's log).
"""

from __future__ import annotations

import re

INTERNAL = re.compile(
    r"[a-z][a-z0-9+.-]*://[^\s'\"),]+"  # URLs
    r"|\[[0-9a-fA-F:.]+\](?::\d+)?"  # [IPv6]:port
    r"|\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b"  # IPv4[:port]
    r"|\b[A-Za-z0-9][A-Za-z0-9.-]*:\d{2,5}\b"  # host:port
    r"|(?<![\w/])/(?:[\w.-]+/)+[\w.-]*",  # absolute paths
    re.IGNORECASE,
)


def redact(detail: str) -> str:
    return INTERNAL.sub("<internal>", detail)
