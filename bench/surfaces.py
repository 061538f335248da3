"""Operator surfaces: the console's first-load size and the CLI's start-up time."""

from __future__ import annotations

import gzip
import os
import resource
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
) -> tuple[float, float]:
    """Median wall and CPU seconds (user + system) of a run; CPU is what a busy machine's
    scheduling does not inflate."""
    argv = [sys.executable, "-m", "meshgate", *args] if module else [sys.executable, *args]
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True, env=env)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def api_command_seconds() -> tuple[float, float]:
    """``meshgate keys list`` against a real server: start-up, one API call, a table."""
    server = Meshgate("surfaces-cli", core=None)
    try:
        env = {**os.environ, "MESHGATE_URL": server.url, "MESHGATE_API_KEY": server.admin_key}
        return start_seconds(["keys", "list"], env=env)
    finally:
        server.stop()


def ms(seconds: tuple[float, float]) -> str:
    return f"{seconds[0] * 1000:.0f} ms ({seconds[1] * 1000:.0f} ms CPU)"


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
            f"CLI start-up, median of 7, wall (CPU): `meshgate --help` {ms(help_s)}, "
            f"`meshgate models --help` {ms(group_s)}, `meshgate keys list` against a running "
            f"server {ms(api_s)} (aim: under 1 s); a bare interpreter (`python -c pass`) "
            f"{ms(python_s)}.",
        ]
    )
