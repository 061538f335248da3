"""Running the training process with its limits, and reading what it left behind."""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Numerical libraries start a thread per core by default: on a shared node one training must
# not take every core, and every thread reserves address space against the memory limit.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
STDERR_TAIL = 2000


@dataclass(frozen=True)
class Outcome:
    ok: bool
    result: dict[str, Any]
    reason: str | None = None


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for name in THREAD_VARS:
        env[name] = "1"
    # The child imports the trainer from where this process could: the same module path.
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and Path(p).is_dir())
    return env


async def run_trainer(
    workdir: Path, request: dict[str, Any], *, timeout_seconds: float, memory_mb: int
) -> Outcome:
    """Run the child in ``workdir``; a failure of any kind is an outcome with its reason."""
    (workdir / "request.json").write_text(json.dumps(request))
    cpu_seconds = math.ceil(timeout_seconds) + 1
    (workdir / "limits.json").write_text(
        json.dumps({"memory_mb": memory_mb, "cpu_seconds": cpu_seconds})
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "meshgate.training.child",
        str(workdir),
        env=_env(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(timeout_seconds):
            _, stderr = await proc.communicate()
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return Outcome(False, {}, f"ran out of time (limit {timeout_seconds:g} s)")
    except asyncio.CancelledError:
        proc.kill()
        await proc.wait()
        raise
    result_file = workdir / "result.json"
    if result_file.is_file():
        result = json.loads(result_file.read_text())
        if result.get("ok"):
            return Outcome(True, result)
        return Outcome(False, result, str(result.get("reason") or "training failed"))
    return Outcome(False, {}, _died(proc.returncode, stderr, memory_mb))


def _died(code: int | None, stderr: bytes, memory_mb: int) -> str:
    tail = stderr.decode(errors="replace")[-STDERR_TAIL:].strip()
    if code is not None and code < 0:
        sig = -code
        if sig == signal.SIGXCPU:
            return "ran out of time (CPU time limit)"
        if sig == signal.SIGKILL:
            return f"killed (likely out of memory; limit {memory_mb} MiB)"
        return f"the training process died of signal {signal.Signals(sig).name}"
    if "MemoryError" in tail or "Cannot allocate memory" in tail:
        return f"ran out of memory (limit {memory_mb} MiB)"
    last = tail.splitlines()[-1] if tail else ""
    return f"the training process exited with code {code}" + (f": {last}" if last else "")
