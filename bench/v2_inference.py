"""V2 inference on the demo iris classifier: Meshgate's whole path against onnxruntime alone.

Both sides run in this process on the same ONNX file and the same one-row input. Meshgate is
called as ASGI (no sockets), so the figure is the platform's own work per inference:
authentication, rate limit, routing, V2 decoding and signature checks, the provider call,
the durable ``prediction.made`` append and the response. Callers run concurrently, as a
server's would, so appends share their commits. Rounds alternate; the best of each is kept.

    .venv/bin/python -m bench.v2_inference
"""

from __future__ import annotations

import asyncio
import math
import os
import secrets
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0", "false")
CALLS = 1_000 if QUICK else 3_000
ROUNDS = 2 if QUICK else 4
CONCURRENCY = 8
ROW = [6.7, 3.0, 5.2, 2.3]
HIGH = str(10**9)


def settings_env(data_dir: Path, key: str) -> dict[str, str]:
    return {
        "MESHGATE_DATA_DIR": str(data_dir),
        "MESHGATE_ADMIN_KEY": key,
        "MESHGATE_KEY_PEPPER": secrets.token_urlsafe(24),
        "MESHGATE_DEMO": "true",
        "MESHGATE_LOG_LEVEL": "warning",
        "MESHGATE_LIMITS__KEY_RPM": HIGH,
        "MESHGATE_LIMITS__TENANT_RPM": HIGH,
    }


def scope_for(path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }


async def meshgate_us(
    app: Any, scope: dict[str, Any], body: bytes, calls: int
) -> tuple[float, float]:
    """(wall, CPU) microseconds per inference, ``CONCURRENCY`` callers at once; the CPU time
    is the whole process's (event-log writer thread included)."""
    failures: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            failures.append(message["status"])

    async def caller(n: int) -> None:
        for _ in range(n):
            await app({**scope, "state": {}}, receive, send)

    started, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(caller(calls // CONCURRENCY) for _ in range(CONCURRENCY)))
    took, cpu_took = time.perf_counter() - started, time.process_time() - cpu
    if failures:
        raise RuntimeError(f"V2 infer answered {failures[0]} in process")
    done = calls // CONCURRENCY * CONCURRENCY
    return took / done * 1e6, cpu_took / done * 1e6


def onnx_us(session: Any, feed: dict[str, np.ndarray], calls: int) -> tuple[float, float]:
    started, cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        session.run(None, feed)
    took, cpu_took = time.perf_counter() - started, time.process_time() - cpu
    return took / calls * 1e6, cpu_took / calls * 1e6


async def measure(data_dir: Path) -> dict[str, float]:
    import onnxruntime as ort

    from meshgate.app import create_app
    from meshgate.config import load_settings

    key = "mg_bench_" + secrets.token_urlsafe(24)
    os.environ.update(settings_env(data_dir, key))
    app = create_app(load_settings())
    body = orjson.dumps(
        {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": ROW}]}
    )
    headers = [
        (b"authorization", f"Bearer {key}".encode()),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    scope = scope_for("/v2/models/iris/versions/1/infer", headers)
    keys = ("meshgate_us", "meshgate_cpu_us", "no_event_us", "no_event_cpu_us", "onnx_us")
    best = {k: math.inf for k in (*keys, "onnx_cpu_us")}
    inference = app.state.services.models.inference
    async with app.router.lifespan_context(app):
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        session = ort.InferenceSession(
            str(data_dir / "models" / "iris-1.onnx"), options, providers=["CPUExecutionProvider"]
        )
        feed = {"input": np.asarray([ROW], dtype=np.float32)}
        await meshgate_us(app, scope, body, 200)  # warm: model loaded, caches filled
        onnx_us(session, feed, 200)
        for _ in range(ROUNDS):
            wall, cpu = await meshgate_us(app, scope, body, CALLS)
            best["meshgate_us"] = min(best["meshgate_us"], wall)
            best["meshgate_cpu_us"] = min(best["meshgate_cpu_us"], cpu)
            # The same path without the prediction event, to show what the durable append costs.
            events, inference.events = inference.events, Unrecorded()
            wall, cpu = await meshgate_us(app, scope, body, CALLS)
            inference.events = events
            best["no_event_us"] = min(best["no_event_us"], wall)
            best["no_event_cpu_us"] = min(best["no_event_cpu_us"], cpu)
            wall, cpu = onnx_us(session, feed, CALLS)
            best["onnx_us"] = min(best["onnx_us"], wall)
            best["onnx_cpu_us"] = min(best["onnx_cpu_us"], cpu)
    return best


def run() -> str:
    import uvloop

    data_dir = Path(tempfile.mkdtemp(prefix="mg-bench-v2-"))
    try:
        best = uvloop.run(measure(data_dir))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    ours, direct = best["meshgate_us"], best["onnx_us"]
    ours_cpu, direct_cpu = best["meshgate_cpu_us"], best["onnx_cpu_us"]
    bare, bare_cpu = best["no_event_us"], best["no_event_cpu_us"]
    return "\n".join(
        [
            "## V2 inference (demo iris classifier, ONNX)",
            "",
            f"In process, one-row requests, {CONCURRENCY} concurrent callers, best of {ROUNDS} "
            f"rounds of {CALLS}. Meshgate's path includes authentication, rate limit, routing, "
            "V2 decoding, the signature check and the durable prediction event.",
            "",
            "| path | wall µs per inference | CPU µs per inference | inferences/s |",
            "|---|---|---|---|",
            f"| onnxruntime `session.run` direct | {direct:.1f} | {direct_cpu:.1f} "
            f"| {1e6 / direct:,.0f} |",
            f"| Meshgate `POST /v2/models/iris/versions/1/infer` | {ours:.1f} | {ours_cpu:.1f} "
            f"| {1e6 / ours:,.0f} |",
            f"| the same without the prediction event (reference only) | {bare:.1f} "
            f"| {bare_cpu:.1f} | {1e6 / bare:,.0f} |",
            "",
            f"Meshgate / onnxruntime: **{ours / direct:.0f}x** wall time, "
            f"**{ours_cpu / direct_cpu:.0f}x** CPU time per inference. The wall time includes "
            "waiting for the prediction event's durable commit; the CPU time is the platform's "
            "own work.",
            "",
        ]
    )


if __name__ == "__main__":
    print(run())


class Unrecorded:
    """An event publisher that appends nothing: the path without the durable append."""

    async def publish(self, type: str, **kwargs: Any) -> Any:
        return None
