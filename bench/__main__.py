"""``python -m bench [section ...]``: run the sections, print them, write bench/results/<date>.md.

Sections run one after another; one that fails is reported as failed and the others still run.
``BENCH_QUICK=1`` shortens every cell for a smoke run (those results are not written over the
day's full results: they go to ``<date>-quick.md``).
"""

from __future__ import annotations

import importlib
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench import summary
from bench.machine import CpuTimes, describe
from bench.procs import QUICK, duration, repetitions
from bench.source import source_description, source_env

# Sections of the bench itself, then those each domain keeps in bench/<name>.py.
SECTIONS = [
    "gateway",
    "chat",
    "scaleout",
    "context_store",
    "event_log",
    "datasets",
    "v2_inference",
    "cache",
    "translations",
    "profile",
    "soak",
    "surfaces",
    "delivery",
]
RESULTS = Path(__file__).resolve().parent / "results"
LATEST = "<!-- latest -->"


def run_section(name: str) -> str:
    started = time.monotonic()
    try:
        module = importlib.import_module(f"bench.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"bench.{name}":
            return f"## {name}\n\nNot present yet (bench/{name}.py)."
        return f"## {name}\n\nFailed to import:\n\n```\n{traceback.format_exc()[-3000:]}```"
    print(f"bench: {name} ...", file=sys.stderr, flush=True)
    try:
        text = str(module.run())
    except Exception:
        return f"## {name}\n\nFailed:\n\n```\n{traceback.format_exc()[-3000:]}```"
    took = time.monotonic() - started
    print(f"bench: {name} done in {took:.0f} s", file=sys.stderr, flush=True)
    return text


def main(argv: list[str]) -> int:
    unknown = [a for a in argv if a not in SECTIONS]
    if unknown:
        print(f"unknown section(s): {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
        return 2
    chosen = argv or SECTIONS
    # Export the chosen commit once; sections that import Meshgate in process use it too.
    if path := source_env().get("PYTHONPATH"):
        sys.path.insert(0, path)
    cpu = CpuTimes.now()
    begun = datetime.now(UTC)
    parts = [run_section(name) for name in chosen]
    if targets := summary.render():
        parts.insert(0, targets)
    mode = "quick (smoke run)" if QUICK else "full"
    head = [
        f"# Meshgate benchmark, {begun:%Y-%m-%d %H:%M} UTC",
        f"Mode: {mode}; {duration()} s per wrk cell, {repetitions()} repetition(s); "
        f"sections: {', '.join(chosen)}. {source_description()}.",
        describe(cpu),
    ]
    text = "\n\n".join(head + parts) + "\n"
    print(text)
    RESULTS.mkdir(exist_ok=True)
    suffix = "-quick" if QUICK else ""
    if argv and not QUICK:
        suffix = "-" + "-".join(argv)
    out = RESULTS / f"{begun:%Y-%m-%d}{suffix}.md"
    out.write_text(text)
    print(f"bench: written to {out}", file=sys.stderr)
    if not argv and not QUICK:
        update_readme(text)
    return 0


def update_readme(text: str) -> None:
    """The README keeps the tables of the latest full run below its marker."""
    readme = Path(__file__).resolve().parent / "README.md"
    head, marker, _ = readme.read_text().partition(LATEST)
    if marker:
        demoted = text.replace("\n## ", "\n### ").replace("# Meshgate benchmark,", "## Full run,")
        readme.write_text(head + LATEST + "\n" + demoted)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
