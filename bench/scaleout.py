"""Scale-out: two Meshgate processes sharing Redis and NATS against one.

Configurations, all running for the whole section and measured interleaved:

- ``1 process, embedded``: in-memory limiter, SQLite event log, core 0 (the reference);
- ``1 process, Redis + NATS``: limiter and context on Redis, events on NATS JetStream, core 0;
- ``2 processes, Redis + NATS``: the same settings, one process on core 0, one on core 1.

The load is two wrk instances at once, each with half the connections, one per process (both
on the single process when there is one); the figure is their summed RPS. wrk and the mock
upstream are not pinned here, since the second process takes the core they use elsewhere: on
a 2-core machine the ideal ratio is therefore below 2, and the figure says whether shared
state lets throughput grow with processes rather than serialising them.
"""

from __future__ import annotations

import asyncio
import secrets
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson

from bench.chat import start_upstream
from bench.meshgate_server import CHAT_MODEL, Meshgate, NotAvailable, chat_body, fresh_dir
from bench.procs import WrkResult, best, duration, lua_script, repetitions, running, wrk
from bench.report import ratio, table

NAMESPACE = "bench"
REDIS_URL = "redis://127.0.0.1:6379/0"
NATS_URL = "nats://127.0.0.1:4222"
CONNECTIONS = 32
SHARED = {
    "MESHGATE_REDIS_URL": REDIS_URL,
    "MESHGATE_NAMESPACE": NAMESPACE,
    "MESHGATE_EVENTS__URL": NATS_URL,
}


def run() -> str:
    upstream, up_url = start_upstream(core=None)
    with running(upstream):
        admin_key = "mg_bench_" + secrets.token_urlsafe(24)
        pepper = secrets.token_urlsafe(24)
        shared_dir = fresh_dir("scaleout-shared")
        common = {"admin_key": admin_key, "pepper": pepper}
        embedded = Meshgate("scaleout-embedded", core="0", **common)
        first = Meshgate("scaleout-1", core="0", env=SHARED, data_dir=shared_dir, **common)
        servers = [embedded, first]
        try:
            route = "chat"
            try:
                embedded.register_chat_model(up_url)
                first.register_chat_model(up_url)
            except NotAvailable as exc:
                route = f"whoami (the chat path is not available: {exc})"
            # Started after registration, on the same database: it sees the same registry.
            second = Meshgate("scaleout-2", core="1", env=SHARED, data_dir=shared_dir, **common)
            servers.append(second)
            script = make_script(route == "chat", admin_key)
            path = "/v1/chat/completions" if route == "chat" else "/v1/whoami"
            configs = {
                "1 process, embedded": [embedded.url, embedded.url],
                "1 process, Redis + NATS": [first.url, first.url],
                "2 processes, Redis + NATS": [first.url, second.url],
            }
            results: dict[str, list[WrkResult]] = {name: [] for name in configs}
            for _ in range(repetitions()):
                for name, urls in configs.items():
                    results[name].append(load([u + path for u in urls], script))
        finally:
            for server in servers:
                server.stop()
            asyncio.run(clean_shared_state())
    return render(route, results)


def make_script(chat: bool, key: str) -> Path:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    if chat:
        return lua_script("POST", orjson.dumps(chat_body(CHAT_MODEL)), headers)
    return lua_script("GET", None, headers)


def load(urls: list[str], script: Path) -> WrkResult:
    """Two wrk instances at once, half the connections each; RPS summed, worst latency kept."""
    half = CONNECTIONS // len(urls)
    with ThreadPoolExecutor(len(urls)) as pool:
        runs = list(
            pool.map(
                lambda u: wrk(u, connections=half, seconds=duration(), script=script, core=None),
                urls,
            )
        )
    return WrkResult(
        rps=sum(r.rps for r in runs),
        p50_ms=max(r.p50_ms for r in runs),
        p99_ms=max(r.p99_ms for r in runs),
        errors=sum(r.errors for r in runs),
        requests=sum(r.requests for r in runs),
    )


async def clean_shared_state() -> None:
    """Remove what the runs left under the bench namespace on the shared servers."""
    try:
        import redis.asyncio as aioredis

        client = aioredis.from_url(REDIS_URL)
        try:
            async for key in client.scan_iter(match=f"{NAMESPACE}*", count=1000):
                await client.delete(key)
            async for key in client.scan_iter(match="{" + f"{NAMESPACE}*", count=1000):
                await client.delete(key)
        finally:
            await client.aclose()
    except Exception:  # cleaning is best effort: the figures are already taken
        pass
    try:
        import nats

        nc = await nats.connect(NATS_URL)
        try:
            js = nc.jetstream()
            for info in await js.streams_info():
                if info.config.name.lower().startswith(NAMESPACE):
                    await js.delete_stream(info.config.name)
        finally:
            await nc.close()
    except Exception:
        pass


def render(route: str, results: dict[str, list[WrkResult]]) -> str:
    reference = best(results["1 process, embedded"])[0].rps
    single = best(results["1 process, Redis + NATS"])[0].rps
    rows = []
    for name, runs in results.items():
        top, spread = best(runs)
        rows.append(
            [
                name,
                f"{top.rps:,.0f} (±{100 * spread:.0f}%)",
                top.p50_ms,
                top.p99_ms,
                f"{ratio(top.rps, reference):.2f}",
                f"{ratio(top.rps, single):.2f}",
                sum(r.errors for r in runs),
            ]
        )
    header = [
        "configuration",
        f"RPS at c={CONNECTIONS} (spread)",
        "p50 ms",
        "p99 ms",
        "vs 1 embedded",
        "vs 1 on Redis + NATS",
        "errors",
    ]
    return "\n\n".join(
        [
            "## Scale-out: two processes on Redis and NATS against one",
            f"Route: {route}. Two wrk instances at c={CONNECTIONS // 2} each, summed; "
            "wrk and the mock upstream unpinned (see bench/README.md).",
            table(header, rows),
        ]
    )
