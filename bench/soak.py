"""Soak: the chat path held at 80% of its measured peak for ten minutes.

A leak, a cache that only grows, or work that piles up shows only over time. The peak is
measured first (wrk, c=8, on the same pinned cores as the chat section); then an open-loop
load at 80% of it runs for ``BENCH_SOAK_SECONDS`` (600; 60 in quick mode), reported per
minute. What it must show: RSS growth under 5% over the last 8 minutes, an error rate under
0.1%, and a flat p99 (the largest minute's p99 over the median minute's).
"""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

import orjson

from bench.chat import script, start_upstream
from bench.meshgate_server import CHAT_MODEL, Meshgate, chat_body
from bench.procs import LOAD_CORE, PROXY_CORE, QUICK, WORK, Proc, wrk
from bench.report import table

LOAD_SHARE = 0.8
WINDOW_COLUMNS = ["window", "vs first", "requests", "errors", "p50 ms", "p99 ms", "RSS MiB"]


def soak_seconds() -> int:
    return int(os.environ.get("BENCH_SOAK_SECONDS", "60" if QUICK else "600"))


def run() -> str:
    upstream, up_url = start_upstream()
    mesh: Meshgate | None = None
    try:
        mesh = Meshgate("soak", core=PROXY_CORE)
        mesh.register_chat_model(up_url)
        url = mesh.url + "/v1/chat/completions"
        peak = wrk(url, connections=8, script=script(CHAT_MODEL, mesh.auth)).rps
        rate = peak * LOAD_SHARE
        body = WORK / "soak-body.json"
        body.write_bytes(orjson.dumps(chat_body(CHAT_MODEL)))
        seconds = soak_seconds()
        window = 60 if seconds >= 180 else max(10, seconds // 6)
        headers = [f"{k}: {v}" for k, v in mesh.auth.items()]
        argv = [
            sys.executable, "-m", "bench.soak_load", "--url", url, "--rate", f"{rate:.0f}",
            "--seconds", str(seconds), "--window", str(window), "--body", str(body),
            "--pid", str(mesh.proc.pid),
        ]  # fmt: skip
        for h in headers:
            argv += ["--header", h]
        load = Proc("soak-load", argv, core=LOAD_CORE, cwd=Path(__file__).resolve().parent.parent)
        load.proc.wait(seconds + 120)
        windows = [orjson.loads(line) for line in load.tail(10**6).splitlines() if line[:1] == "{"]
    finally:
        if mesh is not None:
            mesh.stop()
        upstream.stop()
    return render(peak, rate, windows)


def render(peak: float, rate: float, windows: list[dict[str, float]]) -> str:
    if not windows:
        return "## soak\n\nThe load generator reported nothing (bench/.work/logs/soak-load.log)."
    rows = [
        [
            int(w["window"]) + 1,
            f"{w['requests'] / (windows[0]['requests'] or 1):.2f}x",
            int(w["requests"]),
            int(w["errors"]),
            f"{w['p50_ms']:.1f}",
            f"{w['p99_ms']:.1f}",
            f"{w['rss_bytes'] / 2**20:.0f}",
        ]
        for w in windows
    ]
    total = sum(w["requests"] for w in windows)
    errors = sum(w["errors"] for w in windows)
    # The first windows warm caches and pools; growth is judged over the rest.
    settled = windows[2:] if len(windows) >= 4 else windows[1:]
    growth = settled[-1]["rss_bytes"] / settled[0]["rss_bytes"] - 1 if settled else 0.0
    p99s = [w["p99_ms"] for w in windows]
    flatness = max(p99s) / statistics.median(p99s)
    verdicts = [
        ["RSS growth after warm-up", f"{growth:+.1%}", "< 5%", ok(abs(growth) < 0.05)],
        ["error rate", f"{errors / total:.3%}" if total else "n/a", "< 0.1%",
         ok(total > 0 and errors / total < 0.001)],
        ["worst minute's p99 / median minute's p99", f"{flatness:.2f}", "<= 2 (flat)",
         ok(flatness <= 2)],
    ]  # fmt: skip
    return "\n\n".join(
        [
            "## soak",
            f"Chat at c=8 peaked at {peak:,.0f} RPS; held at {LOAD_SHARE:.0%} of it "
            f"({rate:,.0f} RPS, open loop) for {len(windows)} windows.",
            table(["figure", "result", "target", "met"], verdicts),
            table(WINDOW_COLUMNS, rows),
        ]
    )


def ok(met: bool) -> str:
    return "yes" if met else "no"
