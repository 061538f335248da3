"""Scale-out: two Meshgate processes sharing PostgreSQL, Redis and NATS against one.

Configurations, all running for the whole section and measured interleaved:

- ``1 process, embedded``: in-memory limiter, SQLite event log, core 0 (the reference);
- ``1 process, shared backends``: the platform's SQL store on PostgreSQL (a fresh schema of
  the local ``test`` database), limiter and context on Redis, events on NATS JetStream, core 0;
- ``2 processes, shared backends``: the same settings, one process on core 0, one on core 1.

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
from bench.procs import (
    WrkResult,
    best,
    duration,
    least_cpu,
    lua_script,
    repetitions,
    running,
    with_cpu,
    wrk,
)
from bench.report import ratio, table

NAMESPACE = "bench"
REDIS_URL = "redis://127.0.0.1:6379/0"
NATS_URL = "nats://127.0.0.1:4222"
POSTGRES = "postgresql://127.0.0.1:5432/test"
CONNECTIONS = 32
ONE = "1 process, shared backends"
TWO = "2 processes, shared backends"
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
        common = {"admin_key": admin_key, "pepper": pepper}
        schema = "bench_" + secrets.token_hex(4)
        servers: list[Meshgate] = []
        try:
            shared = {**SHARED, "MESHGATE_DATABASE_URL": create_schema(schema)}
            embedded = Meshgate("scaleout-embedded", core="0", **common)
            servers.append(embedded)
            first = Meshgate(
                "scaleout-1", core="0", env=shared, data_dir=fresh_dir("so-1"), **common
            )
            servers.append(first)
            route = "chat"
            try:
                embedded.register_chat_model(up_url)
                first.register_chat_model(up_url)
            except NotAvailable as exc:
                route = f"whoami (the chat path is not available: {exc})"
            # Started after registration, on the same database: it sees the same registry.
            second = Meshgate(
                "scaleout-2", core="1", env=shared, data_dir=fresh_dir("so-2"), **common
            )
            servers.append(second)
            script = make_script(route == "chat", admin_key)
            path = "/v1/chat/completions" if route == "chat" else "/v1/whoami"
            configs = {
                "1 process, embedded": ([embedded.url, embedded.url], [embedded]),
                ONE: ([first.url, first.url], [first]),
                TWO: ([first.url, second.url], [first, second]),
            }
            results: dict[str, list[WrkResult]] = {name: [] for name in configs}
            for _ in range(repetitions()):
                for name, (urls, procs) in configs.items():
                    pids = [pid for m in procs for pid in m.proc.pids()]
                    measured = with_cpu(pids, lambda u=urls: load([x + path for x in u], script))
                    results[name].append(measured)
        finally:
            for server in servers:
                server.stop()
            asyncio.run(clean_shared_state())
            drop_schema(schema)
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


def create_schema(schema: str) -> str:
    import psycopg

    with psycopg.connect(POSTGRES, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return f"{POSTGRES}?options=-csearch_path%3D{schema}"


def drop_schema(schema: str) -> None:
    import psycopg

    try:
        with psycopg.connect(POSTGRES, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    except psycopg.Error:
        pass


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
    single = best(results[ONE])[0].rps
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
                least_cpu(runs),
                sum(r.errors for r in runs),
            ]
        )
    header = [
        "configuration",
        f"RPS at c={CONNECTIONS} (spread)",
        "p50 ms",
        "p99 ms",
        "vs 1 embedded",
        "vs 1 on shared backends",
        "Meshgate CPU µs/request",
        "errors",
    ]
    return "\n\n".join(
        [
            "## Scale-out: two processes on PostgreSQL, Redis and NATS against one",
            f"Route: {route}. Two wrk instances at c={CONNECTIONS // 2} each, summed; "
            "wrk and the mock upstream unpinned (see bench/README.md). CPU: user + system time "
            "of the Meshgate processes per request, least of the repetitions; if it stays "
            "flat from one process to two, the shared backends add no work per request and "
            "throughput is bounded by the cores left over by wrk and the upstream.",
            table(header, rows),
        ]
    )
