"""The gateway's cost without the HTTP server: ASGI calls of GET /v1/whoami in a loop.

No sockets, no parsing by uvicorn, no load generator: Meshgate's app (every middleware, every
domain started) and the raw ASGI reference are called with the same scope, alternately, in
rounds timed in process CPU time; the best round of each is kept. It is the least noisy view
of the per-request cost of the stack, and it complements the wrk figures, which include the
server and the network.

    taskset -c 0 python -m bench.inprocess   # prints JSON of µs per call

The access log goes to stderr, as under ``meshgate serve``.
"""

from __future__ import annotations

import logging
import math
import os
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from bench.bare_apps import raw_app
from bench.meshgate_server import fresh_dir, server_env
from bench.procs import QUICK

ASGI = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
CALLS = 2_000 if QUICK else 10_000
ROUNDS = 3 if QUICK else 7


def scope_for(headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/v1/whoami",
        "raw_path": b"/v1/whoami",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }


async def per_call_us(app: ASGI, headers: list[tuple[bytes, bytes]], calls: int) -> float:
    base = scope_for(headers)
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    # CPU time of the whole process (the log writer thread included), not wall time: another
    # program sharing the core then cannot inflate the figure.
    started = time.process_time()
    for _ in range(calls):
        await app({**base, "state": {}}, receive, send)
    took = time.process_time() - started
    if statuses[-1] != 200:
        raise RuntimeError(f"GET /v1/whoami answered {statuses[-1]} in process")
    return took / calls * 1e6


async def measure() -> dict[str, float]:
    from meshgate.app import app_from_env

    key = "mg_bench_" + secrets.token_urlsafe(24)
    os.environ.update(server_env(fresh_dir("inprocess"), key))
    # Built as `meshgate serve` builds each worker's app (logging set up the same way).
    app = app_from_env()
    auth = [(b"authorization", f"Bearer {key}".encode())]
    access = logging.getLogger("meshgate.access")
    best = {"meshgate_us": math.inf, "meshgate_no_access_log_us": math.inf, "raw_us": math.inf}
    async with app.router.lifespan_context(app):
        await per_call_us(app, auth, 500)  # warm caches
        await per_call_us(raw_app, [], 500)
        for _ in range(ROUNDS):
            best["meshgate_us"] = min(best["meshgate_us"], await per_call_us(app, auth, CALLS))
            # The same stack with the access-log line turned off, to show what the line costs.
            level = access.level
            access.setLevel(logging.WARNING)
            took = await per_call_us(app, auth, CALLS)
            access.setLevel(level)
            best["meshgate_no_access_log_us"] = min(best["meshgate_no_access_log_us"], took)
            best["raw_us"] = min(best["raw_us"], await per_call_us(raw_app, [], CALLS))
    return best


def main() -> None:
    import uvloop

    sys.stdout.buffer.write(orjson.dumps(uvloop.run(measure())) + b"\n")


if __name__ == "__main__":
    main()
