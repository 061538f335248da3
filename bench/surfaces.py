"""Operator surfaces: the console's first-load size and the CLI's start-up time."""

from __future__ import annotations

import gzip
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.meshgate_server import Meshgate

CONSOLE = Path(__file__).resolve().parents[1] / "src" / "meshgate" / "console" / "static"
FIRST_LOAD = ["index.html", "style.css", "app.js", "api.js", "chart.js"]


def start_seconds(
    args: list[str], runs: int = 7, env: dict[str, str] | None = None, module: bool = True
) -> float:
    argv = [sys.executable, "-m", "meshgate", *args] if module else [sys.executable, *args]
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True, env=env)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def api_command_seconds() -> float:
    """``meshgate keys list`` against a real server: start-up, one API call, a table."""
    server = Meshgate("surfaces-cli", core=None)
    try:
        env = {**os.environ, "MESHGATE_URL": server.url, "MESHGATE_API_KEY": server.admin_key}
        return start_seconds(["keys", "list"], env=env)
    finally:
        server.proc.stop()


def run() -> str:
    rows = []
    js = 0
    for name in FIRST_LOAD:
        data = (CONSOLE / name).read_bytes()
        packed = len(gzip.compress(data, 9))
        js += packed if name.endswith(".js") else 0
        rows.append(f"| {name} | {len(data):,} | {packed:,} |")
    python_s = start_seconds(["-c", "pass"], module=False)
    help_s = start_seconds(["--help"])
    group_s = start_seconds(["models", "--help"])
    api_s = api_command_seconds()
    return "\n".join(
        [
            "## surfaces",
            "",
            "Console first load (every asset the page fetches before its first API call):",
            "",
            "| asset | bytes | gzip bytes |",
            "|---|---|---|",
            *rows,
            "",
            f"Compressed JavaScript on first load: {js:,} bytes (aim: under 300 KB).",
            "",
            f"CLI start-up, median of 7: `meshgate --help` {help_s * 1000:.0f} ms, "
            f"`meshgate models --help` {group_s * 1000:.0f} ms, `meshgate keys list` against a "
            f"running server {api_s * 1000:.0f} ms (aim: under 1 s); a bare interpreter "
            f"(`python -c pass`) {python_s * 1000:.0f} ms, so `keys list` is "
            f"{api_s / python_s:.1f}x an empty start.",
        ]
    )
