"""An open-loop load at a fixed rate, reported per window: ``python -m bench.soak_load``.

Requests start on a schedule whatever the server's answers do (open loop), so a stall shows
as latency instead of being hidden by a client that waits (coordinated omission). Each window
prints one JSON line: requests, errors, p50 and p99 in milliseconds, and the server's RSS.

    python -m bench.soak_load --url URL --rate 1200 --seconds 600 --window 60 \
        --body body.json --header 'Authorization: Bearer ...' --pid 1234
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import aiohttp
import orjson
import uvloop


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def percentile(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class Window:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.errors = 0

    def report(self, index: int, pid: int) -> dict[str, float]:
        return {
            "window": index,
            "requests": len(self.latencies) + self.errors,
            "errors": self.errors,
            "p50_ms": percentile(self.latencies, 0.50),
            "p99_ms": percentile(self.latencies, 0.99),
            "rss_bytes": rss_bytes(pid),
        }


async def one(
    session: aiohttp.ClientSession, url: str, body: bytes, window: Window, cap: asyncio.Semaphore
) -> None:
    async with cap:
        started = time.perf_counter()
        try:
            async with session.post(url, data=body) as response:
                await response.read()
                ok = response.status == 200
        except (aiohttp.ClientError, TimeoutError):
            ok = False
        if ok:
            window.latencies.append((time.perf_counter() - started) * 1000)
        else:
            window.errors += 1


async def run(args: argparse.Namespace, body: bytes) -> None:
    headers = dict(h.split(": ", 1) for h in args.header)
    headers["Content-Type"] = "application/json"
    connector = aiohttp.TCPConnector(limit=args.connections)
    timeout = aiohttp.ClientTimeout(total=10)
    cap = asyncio.Semaphore(args.connections * 4)  # bounded backlog: a stalled server cannot OOM us
    tasks: set[asyncio.Task[None]] = set()
    async with aiohttp.ClientSession(
        connector=connector, headers=headers, timeout=timeout
    ) as session:
        interval = 1.0 / args.rate
        start = time.perf_counter()
        windows = int(args.seconds // args.window)
        for index in range(windows):
            window = Window()
            window_end = start + (index + 1) * args.window
            sent = int(index * args.window * args.rate)
            while (now := time.perf_counter()) < window_end:
                due = start + sent * interval
                if due > now:
                    await asyncio.sleep(due - now)
                task = asyncio.create_task(one(session, args.url, body, window, cap))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                sent += 1
            # Requests of this window still in flight are counted in it, up to a short grace.
            if tasks:
                await asyncio.wait(set(tasks), timeout=2)
            print(orjson.dumps(window.report(index, args.pid)).decode(), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--rate", type=float, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--window", type=float, default=60)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--body", required=True)
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--pid", type=int, required=True)
    args = parser.parse_args()
    uvloop.run(run(args, Path(args.body).read_bytes()))
    sys.exit(0)


if __name__ == "__main__":
    main()
