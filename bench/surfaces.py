"""Operator surfaces: the console's first-load size and the CLI's start-up time."""

from __future__ import annotations

import gzip
import statistics
import subprocess
import sys
import time
from pathlib import Path

CONSOLE = Path(__file__).resolve().parents[1] / "src" / "meshgate" / "console" / "static"
FIRST_LOAD = ["index.html", "style.css", "app.js", "api.js", "chart.js"]


def start_seconds(args: list[str], runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "meshgate", *args], capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def run() -> str:
    rows = []
    js = 0
    for name in FIRST_LOAD:
        data = (CONSOLE / name).read_bytes()
        packed = len(gzip.compress(data, 9))
        js += packed if name.endswith(".js") else 0
        rows.append(f"| {name} | {len(data):,} | {packed:,} |")
    help_s = start_seconds(["--help"])
    group_s = start_seconds(["models", "--help"])
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
            f"`meshgate models --help` {group_s * 1000:.0f} ms (aim: under 1 s).",
        ]
    )
