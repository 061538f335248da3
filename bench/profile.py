"""Where Meshgate spends its CPU: py-spy samples under load, hottest frames first.

Meshgate on core 0 with the chat model on the mock upstream; the chat path (when served) and
the no-op route GET /v1/whoami (the gateway alone) in turn, wrk at c=8 on core 1, and
``py-spy record --format raw`` on the server for the length of one cell, samples aggregated
by function and split by thread. The raw (collapsed) stacks are kept in
bench/.work/profile-<route>.txt, which speedscope or flamegraph.pl draw; the tables give each
frame's share of the samples on its own (self) and with what it calls (inclusive).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import orjson

from bench.chat import start_upstream
from bench.meshgate_server import CHAT_MODEL, Meshgate, NotAvailable, chat_body
from bench.procs import PROXY_CORE, WORK, duration, lua_script, running, wrk
from bench.report import table

TOP = 15
RATE = 250
# Frames every sample passes through (the server's entry point): they say nothing.
OUTER = ("meshgate/cli/", "meshgate/__main__.py")


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise RuntimeError("py-spy is not installed (it is in the dev extras)")
    return found


def run() -> str:
    upstream, up_url = start_upstream()
    with running(upstream):
        mesh = Meshgate("profile-meshgate", core=PROXY_CORE)
        with running(mesh.proc):
            targets = [("whoami", mesh.url + "/v1/whoami", lua_script("GET", None, mesh.auth))]
            try:
                mesh.register_chat_model(up_url)
                headers = {**mesh.auth, "Content-Type": "application/json"}
                body = orjson.dumps(chat_body(CHAT_MODEL))
                chat_url = mesh.url + "/v1/chat/completions"
                targets.insert(0, ("chat", chat_url, lua_script("POST", body, headers)))
            except NotAvailable:
                pass
            parts = []
            for route, url, script in targets:
                stacks = WORK / f"profile-{route}.txt"
                profile_under_load(mesh.proc.pid, url, script, stacks)
                parts.append(render(route, stacks))
    return "\n\n".join(parts)


def profile_under_load(pid: int, url: str, script: Path, stacks: Path) -> None:
    seconds = duration()
    wrk(url, connections=8, seconds=1, script=script)
    load = threading.Thread(
        target=wrk,
        kwargs={"url": url, "connections": 8, "seconds": seconds + 2, "script": script},
    )
    load.start()
    try:
        record(pid, stacks, seconds)
    finally:
        load.join()


def record(pid: int, out: Path, seconds: int) -> None:
    argv = [
        py_spy(),
        "record",
        "--pid",
        str(pid),
        "--duration",
        str(seconds),
        "--rate",
        str(RATE),
        "--format",
        "raw",
        "--nonblocking",
        "--function",
        "--threads",
        "--output",
        str(out),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False)
    if done.returncode != 0 or not out.exists():
        raise RuntimeError(f"py-spy failed: {done.stderr[-1000:]}")


def parse(path: Path) -> tuple[Counter[str], Counter[str], Counter[str], int]:
    """Self and inclusive sample counts per frame, samples per thread, and the total."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    threads: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        if frames[0].startswith("thread ("):
            # "thread (tid): Name": pools number their threads; count them as one.
            threads[re.sub(r"\d+", "N", frames.pop(0).partition(": ")[2] or "?")] += n
        if not frames:
            continue
        names = [short(f) for f in frames]
        total += n
        own[names[-1]] += n
        for frame in set(names):
            inclusive[frame] += n
    return own, inclusive, threads, total


def short(frame: str) -> str:
    """``func (path/to/module.py:12)``, the path from ``meshgate/`` or its last three parts."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    file, _, line = where.rpartition(":")
    parts = Path(file).parts if file else ()
    if "meshgate" in parts:
        parts = parts[len(parts) - 1 - parts[::-1].index("meshgate") :]
    else:
        parts = parts[-3:]
    return f"{name} ({'/'.join(parts)}:{line})" if parts else name


def render(route: str, path: Path) -> str:
    own, inclusive, threads, total = parse(path)
    if total == 0:
        return "## Profile\n\npy-spy took no samples."
    self_rows = [[f"`{f}`", f"{100 * n / total:.1f}%"] for f, n in own.most_common(TOP)]
    ours = [
        (f, n)
        for f, n in inclusive.most_common()
        if "meshgate/" in f and not any(outer in f for outer in OUTER)
    ]
    incl_rows = [[f"`{f}`", f"{100 * n / total:.1f}%"] for f, n in ours[:TOP]]
    return "\n\n".join(
        [
            f"## Profile: Meshgate's {route} path under load (py-spy)",
            f"{total} busy samples at {RATE} Hz (py-spy leaves out idle ones), wrk c=8. "
            f"Raw stacks: bench/.work/{path.name}.",
            "Busy samples by thread (the event loop is MainThread; the others are the "
            "backends' and the log writer's threads):",
            table(
                ["thread", "share"],
                [[name, f"{100 * n / total:.1f}%"] for name, n in threads.most_common(8)],
            ),
            "Hottest frames on their own:",
            table(["frame", "self"], self_rows),
            "Meshgate's frames with what they call:",
            table(["frame", "inclusive"], incl_rows),
        ]
    )
