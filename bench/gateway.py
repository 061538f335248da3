"""The gateway's own cost: GET /v1/whoami through the full stack against bare references.

Three servers under uvicorn (uvloop, httptools), each pinned to core 0, wrk on core 1:

- a raw ASGI app answering the same JSON (the floor of any ASGI server);
- a FastAPI app with the same route and no middleware (the framework's own cost, for scale);
- Meshgate, authenticated (bearer key, cached) and rate-limited (in-memory limiter), with
  every middleware of the stack and every domain started.

All three run at once and the cells are interleaved, so slow phases of the shared machine hit
every variant alike. At c=8 the server's core is saturated and 1/RPS is its CPU time per
request; the difference to a reference is what the extra layers cost per request.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson

from bench import summary
from bench.bare_apps import BODY
from bench.meshgate_server import Meshgate
from bench.procs import (
    PROXY_CORE,
    WORK,
    best,
    free_port,
    interleaved,
    least_cpu,
    lua_script,
    pinned,
    python_server,
    running,
)
from bench.report import per_request_us, ratio, table
from bench.source import source_env

CONNECTIONS = (1, 8)


def run() -> str:
    return "\n\n".join([over_http(), in_process()])


def in_process() -> str:
    """ASGI calls without a server (bench/inprocess.py), pinned to core 0 like the servers."""
    logs = WORK / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with (logs / "inprocess.log").open("wb") as err:
        done = subprocess.run(
            pinned(PROXY_CORE, [sys.executable, "-m", "bench.inprocess"]),
            stdout=subprocess.PIPE,
            stderr=err,
            cwd=Path(__file__).resolve().parent.parent,
            env={**os.environ, **source_env()},
            timeout=600,
            check=False,
        )
    if done.returncode != 0:
        return "In-process measurement failed (see bench/.work/logs/inprocess.log)."
    us = orjson.loads(done.stdout)
    added = us["meshgate_us"] - us["raw_us"]
    summary.check(
        "gateway stack on GET /v1/whoami, in process, over raw ASGI: ≤ 50 µs",
        f"{added:.1f} µs",
        added,
        50,
        at_least=False,
    )
    rows = [
        ["raw ASGI", us["raw_us"], "", ""],
        ["Meshgate", us["meshgate_us"], us["meshgate_us"] - us["raw_us"], "< 50"],
        [
            "Meshgate, access-log line off",
            us["meshgate_no_access_log_us"],
            us["meshgate_no_access_log_us"] - us["raw_us"],
            "",
        ],
    ]
    return "\n\n".join(
        [
            "In process, without the HTTP server (bench/inprocess.py): µs per ASGI call of "
            "GET /v1/whoami in process CPU time, best of several rounds, core 0; the access log "
            "written to a file by its writer thread as under `meshgate serve`.",
            table(["app", "µs per call", "added over raw ASGI, µs", "aim"], rows),
        ]
    )


def over_http() -> str:
    raw_port, fastapi_port = free_port(), free_port()
    raw = python_server("bare-asgi", "bare_apps", raw_port, PROXY_CORE, "--kind", "raw")
    fast = python_server("bare-fastapi", "bare_apps", fastapi_port, PROXY_CORE, "--kind", "fastapi")
    with running(raw, fast):
        raw.wait_http(f"http://127.0.0.1:{raw_port}/v1/whoami")
        fast.wait_http(f"http://127.0.0.1:{fastapi_port}/v1/whoami")
        mesh = Meshgate("gateway-meshgate", core=PROXY_CORE)
        with running(mesh.proc):
            return measure(
                {
                    "raw ASGI": (f"http://127.0.0.1:{raw_port}/v1/whoami", {}, raw.pids()),
                    "FastAPI route": (
                        f"http://127.0.0.1:{fastapi_port}/v1/whoami",
                        {},
                        fast.pids(),
                    ),
                    "Meshgate": (mesh.url + "/v1/whoami", mesh.auth, mesh.proc.pids()),
                }
            )


def measure(variants: dict[str, tuple[str, dict[str, str], list[int]]]) -> str:
    cells = interleaved(
        {n: (url, lua_script("GET", None, h), pids) for n, (url, h, pids) in variants.items()},
        CONNECTIONS,
    )
    rows = []
    for name in variants:
        row: list[object] = [name]
        for c in CONNECTIONS:
            top, spread = best(cells[(name, c)])
            row += [f"{top.rps:,.0f} (±{100 * spread:.0f}%)", top.p50_ms, top.p99_ms]
        errors = sum(r.errors for c in CONNECTIONS for r in cells[(name, c)])
        rows.append([*row, least_cpu(cells[(name, 8)]), errors])
    header = ["server (GET /v1/whoami)"]
    for c in CONNECTIONS:
        header += [f"c={c} RPS (spread)", f"c={c} p50 ms", f"c={c} p99 ms"]
    header += ["server CPU µs/request (c=8)", "non-2xx / socket errors"]

    def rps(name: str, c: int) -> float:
        return best(cells[(name, c)])[0].rps

    cost_rows = []
    for ref in ("raw ASGI", "FastAPI route"):
        row: list[object] = [f"Meshgate vs {ref}"]
        for c in CONNECTIONS:
            added = per_request_us(rps("Meshgate", c)) - per_request_us(rps(ref, c))
            row += [added, ratio(rps("Meshgate", c), rps(ref, c))]
        cpu = least_cpu(cells[("Meshgate", 8)]) - least_cpu(cells[(ref, 8)])
        cost_rows.append([*row, cpu])
        summary.check(
            f"gateway stack on GET /v1/whoami over HTTP, server CPU over {ref}: ≤ 50 µs",
            f"{cpu:.0f} µs",
            cpu,
            50,
            at_least=False,
        )
    cost_header = ["comparison"]
    for c in CONNECTIONS:
        cost_header += [f"c={c} added µs/request", f"c={c} RPS ratio"]
    cost_header.append("added server CPU µs/request (c=8)")
    body_bytes = len(BODY)
    return "\n\n".join(
        [
            "## Gateway: the middleware stack on a no-op route",
            f"Server pinned to core 0, wrk to core 1; {body_bytes}-byte JSON answer; "
            "best of the repetitions, spread = (best - worst) / best.",
            table(header, rows),
            table(cost_header, cost_rows),
            "Aim: the gateway stack (Meshgate vs raw ASGI) under 50 µs per request. At c=8 "
            "1/RPS is the server's time per request when it has its core to itself; the CPU "
            "column (user + system time of the server process over the cell, per request, "
            "least of the repetitions) is the same figure, less disturbed by other load. "
            "Meshgate dispatches its hot routes (whoami, inference) by dict lookup in front of "
            "the framework's route scan.",
        ]
    )
