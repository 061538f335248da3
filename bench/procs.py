"""Processes under test: started pinned to a core, waited for, stopped; wrk runs and parses.

Every server is a separate process so that pinning (taskset) puts the code under test on one
core and the load generator and the upstream on the other.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import httpx

from bench.source import source_env

WORK = Path(__file__).resolve().parent / ".work"
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0", "false")
PROXY_CORE = "0"
LOAD_CORE = "1"
LUA = WORK / "lua"


def duration() -> int:
    """Seconds per wrk cell: 15 for a real run, 3 for a smoke run."""
    return int(os.environ.get("BENCH_DURATION", "3" if QUICK else "15"))


def repetitions() -> int:
    return int(os.environ.get("BENCH_REPS", "1" if QUICK else "2"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(core: str | None, argv: list[str]) -> list[str]:
    if core is None or shutil.which("taskset") is None or (os.cpu_count() or 1) < 2:
        return argv
    return ["taskset", "-c", core, *argv]


class Proc:
    """A child process with its log in bench/.work/logs; stopped with SIGTERM, then SIGKILL."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        core: str | None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ):
        logs = WORK / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.log = logs / f"{name}.log"
        self.proc = subprocess.Popen(
            pinned(core, argv),
            env={**os.environ, **source_env(), **(env or {})},
            cwd=cwd,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def pids(self) -> list[int]:
        """The process and its descendants (taskset execs in place, so the pid is the server)."""
        return tree(self.proc.pid)

    def wait_http(self, url: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.tail()}")
            try:
                if httpx.get(url, timeout=1).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} did not answer {url} in {timeout} s: {self.tail()}")

    def tail(self, n: int = 2000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@contextmanager
def running(*procs: Proc) -> Iterator[None]:
    try:
        yield
    finally:
        for p in procs:
            p.stop()


def python_server(name: str, module: str, port: int, core: str | None, *args: str) -> Proc:
    """One of the bench's own servers (``python -m bench.<module> --port N``)."""
    root = Path(__file__).resolve().parent.parent
    argv = [sys.executable, "-m", f"bench.{module}", "--port", str(port), *args]
    return Proc(name, argv, core=core, cwd=root)


# --- wrk -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WrkResult:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    requests: int
    cpu_us: float = math.nan
    """CPU time the server processes spent per request (user + system, all threads)."""


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of processes so far, from /proc (nan where unreadable)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return math.nan
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def tree(pid: int) -> list[int]:
    """A process and its descendants (a server may fork its workers)."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            for child in task.read_text().split():
                found += tree(int(child))
        except OSError:
            continue
    return found


def with_cpu(pids: list[int], measure: Callable[[], WrkResult]) -> WrkResult:
    """``measure()`` with the CPU the server processes spent on it, per request."""
    before = cpu_seconds(pids)
    result = measure()
    spent = cpu_seconds(pids) - before
    per_request = spent / result.requests * 1e6 if result.requests else math.nan
    return replace(result, cpu_us=per_request)


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("bench: installing wrk (apt-get)", file=sys.stderr, flush=True)
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    subprocess.run(["apt-get", "update", "-qq"], check=False, **quiet)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, **quiet)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is not installed and apt-get could not install it")
    return found


def lua_script(method: str, body: bytes | None, headers: dict[str, str]) -> Path:
    """A wrk script that sends one fixed request; cached by content."""
    lines = [f'wrk.method = "{method}"']
    if body is not None:
        lines.append(f"wrk.body = {lua_string(body.decode())}")
    for k, v in headers.items():
        lines.append(f"wrk.headers[{lua_string(k)}] = {lua_string(v)}")
    text = "\n".join(lines) + "\n"
    LUA.mkdir(parents=True, exist_ok=True)
    fd, path = tempfile.mkstemp(suffix=".lua", dir=LUA)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    return Path(path)


def lua_string(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def wrk(
    url: str,
    *,
    connections: int,
    seconds: int | None = None,
    script: Path | None = None,
    core: str | None = LOAD_CORE,
) -> WrkResult:
    seconds = seconds or duration()
    argv = [
        ensure_wrk(),
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "10s",
    ]
    if script is not None:
        argv += ["-s", str(script)]
    argv.append(url)
    out = subprocess.run(
        pinned(core, argv), capture_output=True, text=True, timeout=seconds + 60, check=False
    )
    return parse_wrk(out.stdout + out.stderr)


UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


def to_ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        return float("nan")
    return float(m.group(1)) * UNITS[m.group(2)]


def parse_wrk(text: str) -> WrkResult:
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    p50 = re.search(r"^\s+50%\s+(\S+)", text, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", text, re.M)
    total = re.search(r"(\d+) requests in", text)
    if rps is None or total is None:
        raise RuntimeError(f"wrk gave no result: {text[-800:]}")
    errors = 0
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if non2xx:
        errors += int(non2xx.group(1))
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if sock:
        errors += sum(int(g) for g in sock.groups())
    return WrkResult(
        rps=float(rps.group(1)),
        p50_ms=to_ms(p50.group(1)) if p50 else float("nan"),
        p99_ms=to_ms(p99.group(1)) if p99 else float("nan"),
        errors=errors,
        requests=int(total.group(1)),
    )


Cells = dict[tuple[str, int], list[WrkResult]]


def interleaved(
    variants: dict[str, tuple[str, Path, list[int]]],
    connections: tuple[int, ...],
    *,
    warm_up: bool = True,
) -> Cells:
    """Every (variant, connections) cell, repetitions interleaved so noise hits all alike.

    ``variants`` maps a name to (url, wrk script, pids of the server processes whose CPU time
    per request is recorded).
    """
    if warm_up:
        for url, script, _ in variants.values():
            wrk(url, connections=8, seconds=1, script=script)
    cells: Cells = {}
    for _ in range(repetitions()):
        for c in connections:
            for name, (url, script, pids) in variants.items():
                result = with_cpu(pids, lambda: wrk(url, connections=c, script=script))  # noqa: B023
                cells.setdefault((name, c), []).append(result)
    return cells


def least_cpu(results: list[WrkResult]) -> float:
    """The lowest CPU time per request across repetitions (the least disturbed one)."""
    values = [r.cpu_us for r in results if not math.isnan(r.cpu_us)]
    return min(values) if values else math.nan


def best(results: list[WrkResult]) -> tuple[WrkResult, float]:
    """The best repetition (the capability) and the spread of RPS across them (the noise)."""
    top = max(results, key=lambda r: r.rps)
    low = min(r.rps for r in results)
    spread = (top.rps - low) / top.rps if top.rps else 0.0
    return top, spread
