"""Context store reads: the hot path's cache, SQLite and Redis, each against a raw reference.

In process, one read at a time, each timed alone (p50 and p99 over thousands of reads):

- the cached read (``ContextService.resolve`` on a warm cache, policy applied) against a raw
  dict lookup;
- a SQLite read (``SqliteContextStore.get_user``, through its dedicated thread) against a raw
  ``sqlite3`` SELECT of the same row on the calling thread;
- a Redis read (``RedisContextStore.get_user``, one HMGET) and the hot-path read (profile,
  session and newest interactions in one pipelined round trip) against a raw GET of a value
  of the same size, same client, loopback.

Over HTTP: ``GET /v1/context/users/{id}`` against the gateway's no-op route (``/v1/whoami``)
on one ``meshgate serve`` pinned to core 0, wrk on core 1, c=8.

Runnable alone: ``python -m bench.context_store``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis
import redis.asyncio as aredis
from tests.context.quiet import QuietAudit, QuietEvents

from bench.report import ratio, table
from meshgate.context.backends.redis import RedisContextStore
from meshgate.context.backends.sqlite import SqliteContextStore
from meshgate.context.cache import ContextCache
from meshgate.context.config import ContextConfig
from meshgate.context.handle import HandleSigner
from meshgate.context.invalidation import LocalBus
from meshgate.context.model import Interaction, Session, UserProfile
from meshgate.context.notify import Notifier
from meshgate.context.service import ContextService

REDIS_URL = os.environ.get("MESHGATE_TEST_REDIS", "redis://127.0.0.1:6379") + "/15"
READS = 5_000
TENANT = "bench"
PROFILE = UserProfile(
    "user-42",
    {"tier": "gold", "segment": "smb", "address": {"city": "Lyon", "country": "FR"}},
    {"language": "fr", "tone": "formal", "units": "metric"},
    1,
    time.time(),
)
ALLOW = ["preferences.language", "attributes.tier", "interactions.last:5"]

Timing = tuple[float, float]  # (p50, p99) in microseconds


def percentiles(samples_ns: list[int]) -> Timing:
    samples_ns.sort()
    n = len(samples_ns)
    return samples_ns[n // 2] / 1e3, samples_ns[min(n - 1, int(n * 0.99))] / 1e3


async def paired(
    ours: Callable[[], Awaitable[Any]],
    ref: Callable[[], Any],
    *,
    ref_awaits: bool,
    reads: int = READS,
) -> tuple[Timing, Timing]:
    """Each read of ours is followed by one of the reference, so noise hits both alike."""
    for _ in range(200):
        await ours()
        await ref() if ref_awaits else ref()
    mine, theirs = [], []
    clock = time.perf_counter_ns
    for _ in range(reads):
        t0 = clock()
        await ours()
        t1 = clock()
        if ref_awaits:
            await ref()
        else:
            ref()
        t2 = clock()
        mine.append(t1 - t0)
        theirs.append(t2 - t1)
    return percentiles(mine), percentiles(theirs)


async def seed(store: Any) -> str:
    await store.put_user(TENANT, PROFILE)
    now = time.time()
    sid = "ses_" + secrets.token_hex(8)
    await store.create_session(
        TENANT, Session(sid, PROFILE.user_id, "web", 600, {}, now, now + 600)
    )
    turns = [Interaction("user", f"turn {n} " + "x" * 80, {}, now) for n in range(10)]
    await store.append_interactions(TENANT, sid, turns, keep=50)
    return sid


async def cached(store: Any, sid: str) -> list[list[object]]:
    config, signer = ContextConfig(), HandleSigner(b"k" * 32)
    service = ContextService(
        store,
        config,
        signer=signer,
        cache=ContextCache(config.cache_size, config.cache_ttl_seconds),
        bus=LocalBus(),
        notifier=Notifier(signer, QuietEvents(), QuietAudit()),
    )
    resolve_once = lambda: service.resolve(  # noqa: E731
        tenant=TENANT, user_id=PROFILE.user_id, session_id=sid, allow=ALLOW
    )
    await resolve_once()
    table_ = {(TENANT, "u", PROFILE.user_id): PROFILE}
    key = (TENANT, "u", PROFILE.user_id)
    ours, ref = await paired(resolve_once, lambda: table_.get(key), ref_awaits=False)
    return [
        [
            "cached resolve (profile + session, policy applied)",
            *ours,
            "dict lookup",
            *ref,
            ratio(ours[1], ref[1]),
            "≤ 200",
        ],
    ]


async def on_sqlite(path: Path) -> list[list[object]]:
    store = SqliteContextStore(path)
    await store.start()
    try:
        await seed(store)
        raw = sqlite3.connect(path)
        select = "SELECT attributes, preferences, version FROM users WHERE tenant=? AND user_id=?"
        ours, ref = await paired(
            lambda: store.get_user(TENANT, PROFILE.user_id),
            lambda: raw.execute(select, (TENANT, PROFILE.user_id)).fetchone(),
            ref_awaits=False,
        )
        raw.close()
    finally:
        await store.close()
    return [
        ["SQLite get_user", *ours, "raw sqlite3 SELECT", *ref, ratio(ours[1], ref[1]), "≤ 1,000"]
    ]


async def on_redis(namespace: str) -> list[list[object]]:
    store = RedisContextStore(REDIS_URL, prefix=f"{namespace}:ctx:")
    raw = aredis.Redis.from_url(REDIS_URL)
    try:
        await store.start()
        sid = await seed(store)
        await raw.set(f"{namespace}:raw", orjson.dumps([PROFILE.attributes, PROFILE.preferences]))
        get_raw = lambda: raw.get(f"{namespace}:raw")  # noqa: E731
        user, ref = await paired(
            lambda: store.get_user(TENANT, PROFILE.user_id), get_raw, ref_awaits=True
        )
        hot, ref2 = await paired(
            lambda: store.get_context(TENANT, PROFILE.user_id, sid, last=50),
            get_raw,
            ref_awaits=True,
        )
    finally:
        await store.close()
        await raw.aclose()
    return [
        ["Redis get_user (HMGET)", *user, "raw GET", *ref, ratio(user[1], ref[1]), "≤ 1,000"],
        [
            "Redis profile + session + 10 turns, one round trip",
            *hot,
            "raw GET",
            *ref2,
            ratio(hot[1], ref2[1]),
            "",
        ],
    ]


def in_process() -> str:
    namespace = "benchctx" + secrets.token_hex(4)
    workdir = Path(tempfile.mkdtemp(prefix="bench-context-"))
    rows: list[list[object]] = []
    try:
        import uvloop

        async def all_rows() -> None:
            rows.extend(await on_sqlite(workdir / "context.db"))
            sqlite_store = SqliteContextStore(workdir / "context.db")
            await sqlite_store.start()
            try:
                sid = await seed(sqlite_store)
                rows[:0] = await cached(sqlite_store, sid)
            finally:
                await sqlite_store.close()
            try:
                rows.extend(await on_redis(namespace))
            except redis.RedisError as exc:
                rows.append([f"Redis: not reachable ({exc})", "", "", "", "", "", "", ""])

        uvloop.run(all_rows())
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        client = redis.Redis.from_url(REDIS_URL)
        for key in client.scan_iter(f"{namespace}*"):
            client.delete(key)
        client.close()
    header = [
        "read",
        "p50 µs",
        "p99 µs",
        "reference",
        "ref p50 µs",
        "ref p99 µs",
        "p99 ratio",
        "aim, p99 µs",
    ]
    return "\n\n".join(
        [
            f"In process, {READS:,} sequential reads each, timed one by one, each read followed "
            "by one of its reference so that noise hits both alike (uvloop; one user with 6 "
            "attributes and preferences, a session with 10 turns).",
            table(header, rows),
        ]
    )


def over_http() -> str:
    from bench.meshgate_server import Meshgate
    from bench.procs import PROXY_CORE, lua_script, running, wrk

    mesh = Meshgate("context-meshgate", core=PROXY_CORE)
    with running(mesh.proc):
        with httpx.Client(base_url=mesh.url, headers=mesh.auth) as http:
            body = {"attributes": PROFILE.attributes, "preferences": PROFILE.preferences}
            http.patch(f"/v1/context/users/{PROFILE.user_id}", json=body).raise_for_status()
        script = lua_script("GET", None, mesh.auth)
        variants = {
            "GET /v1/whoami (no-op)": mesh.url + "/v1/whoami",
            "GET /v1/context/users/{id}": f"{mesh.url}/v1/context/users/{PROFILE.user_id}",
        }
        for url in variants.values():
            wrk(url, connections=8, seconds=1, script=script)
        cells: dict[str, list[Any]] = {name: [] for name in variants}
        for _ in range(2):
            for name, url in variants.items():
                cells[name].append(wrk(url, connections=8, seconds=5, script=script))
    rows = []
    best = {name: max(results, key=lambda r: r.rps) for name, results in cells.items()}
    for name, top in best.items():
        errors = sum(r.errors for r in cells[name])
        rows.append([name, f"{top.rps:,.0f}", top.p50_ms, top.p99_ms, errors])
    noop, ctx = best.values()
    return "\n\n".join(
        [
            "Over HTTP: one `meshgate serve` (SQLite context store, cache on) pinned to core 0, "
            "wrk on core 1, c=8, 2 x 5 s interleaved, best shown.",
            table(["route", "RPS", "p50 ms", "p99 ms", "non-2xx / socket errors"], rows),
            f"Context read RPS / no-op RPS: {ratio(ctx.rps, noop.rps):.2f}.",
        ]
    )


def run() -> str:
    parts = ["## Context store", in_process()]
    try:
        parts.append(over_http())
    except Exception as exc:  # the in-process figures stand on their own
        parts.append(f"Over HTTP: not measured ({type(exc).__name__}: {exc}).")
    return "\n\n".join(parts)


if __name__ == "__main__":
    print(run())
