"""The response cache: a hit through the whole gateway against a miss on the same server.

One Meshgate pinned to core 0 with the chat model on the mock upstream (wrk and the mock on
core 1) and its cache on (``exact``). ``hit`` sends the same request over and over (every one
after the first is answered from the cache); ``miss`` sends the same request with
``cache-control: no-cache`` (the full path to the upstream, answer stored again). ``direct``
is the mock upstream itself. The aim: a hit's p99 at most 1 ms through the whole gateway.
Then the cache is switched to ``semantic`` (an embedding model on the same mock upstream):
``semantic hit`` asks the same question again, so each call embeds it (one embedding call
through the gateway to the upstream) and finds its answer in the index.
"""

from __future__ import annotations

import httpx
import orjson

from bench import summary
from bench.chat import JSON, start_upstream
from bench.meshgate_server import CHAT_MODEL, Meshgate, chat_body
from bench.mock_upstream import MODEL
from bench.procs import PROXY_CORE, Cells, Proc, best, interleaved, lua_script
from bench.report import ratio, table

CONNECTIONS = (1, 8, 32)
EMBEDDER = "bench-embed"


def run() -> str:
    procs: list[Proc] = []
    try:
        upstream, up_url = start_upstream()
        procs.append(upstream)
        # The mock upstream is on loopback, which providers may reach only when allowed.
        allow = {"MESHGATE_SECURITY__EGRESS_ALLOW": '["127.0.0.1"]'}
        mesh = Meshgate("cache", core=PROXY_CORE, env=allow)
        procs.append(mesh.proc)
        mesh.register_chat_model(up_url)
        with httpx.Client(base_url=mesh.url, headers=mesh.auth, timeout=30) as client:
            on = client.put(
                f"/v1/registry/models/{CHAT_MODEL}/cache",
                json={"mode": "exact", "ttl_seconds": 3600},
            )
            if on.status_code != 200:
                raise RuntimeError(f"turning the cache on: {on.status_code} {on.text[:300]}")
            body = chat_body(CHAT_MODEL)
            client.post("/v1/chat/completions", json=body)
            hit = client.post("/v1/chat/completions", json=body)
            if hit.headers.get("x-cache") != "hit":
                raise RuntimeError(f"the second request was no hit: {hit.headers}")
        raw = orjson.dumps(chat_body(CHAT_MODEL))
        bypass = {**JSON, **mesh.auth, "cache-control": "no-cache"}
        pids = mesh.proc.pids()
        cells = interleaved(
            {
                "direct": (
                    up_url + "/v1/chat/completions",
                    lua_script("POST", orjson.dumps(chat_body(MODEL)), JSON),
                    upstream.pids(),
                ),
                "hit": (
                    mesh.url + "/v1/chat/completions",
                    lua_script("POST", raw, {**JSON, **mesh.auth}),
                    pids,
                ),
                "miss": (
                    mesh.url + "/v1/chat/completions",
                    lua_script("POST", raw, bypass),
                    pids,
                ),
            },
            CONNECTIONS,
        )
        with httpx.Client(base_url=mesh.url, headers=mesh.auth, timeout=30) as client:
            semantic_on(client, up_url)
            client.post("/v1/chat/completions", json=body)
            hit = client.post("/v1/chat/completions", json=body)
            if hit.headers.get("x-cache") != "hit":
                raise RuntimeError(f"the second semantic request was no hit: {hit.headers}")
        cells |= interleaved(
            {
                "semantic hit": (
                    mesh.url + "/v1/chat/completions",
                    lua_script("POST", raw, {**JSON, **mesh.auth}),
                    pids,
                )
            },
            CONNECTIONS,
        )
    finally:
        for p in reversed(procs):
            p.stop()
    return render(cells)


def semantic_on(client: httpx.Client, upstream: str) -> None:
    """An embedding model on the mock upstream, and the chat model's cache on it."""
    steps = [
        ("POST", "/v1/registry/models", {"name": EMBEDDER, "task": "embedding"}),
        (
            "POST",
            f"/v1/registry/models/{EMBEDDER}/versions",
            {
                "version": "1",
                "provider": {"type": "openai", "base_url": upstream + "/v1", "model": "embed"},
            },
        ),
        (
            "PUT",
            f"/v1/registry/models/{CHAT_MODEL}/cache",
            {"mode": "semantic", "embedding_model": EMBEDDER, "similarity": 0.9},
        ),
    ]
    for method, path, body in steps:
        answer = client.request(method, path, json=body)
        if answer.status_code not in (200, 201, 409):
            raise RuntimeError(f"{method} {path}: {answer.status_code} {answer.text[:300]}")


def render(cells: Cells) -> str:
    header = ["variant"]
    for c in CONNECTIONS:
        header += [f"c={c} RPS", f"c={c} p50 ms", f"c={c} p99 ms"]
    rows = []
    for name in ("direct", "hit", "miss", "semantic hit"):
        row: list[object] = [name]
        for c in CONNECTIONS:
            top, _ = best(cells[(name, c)])
            row += [f"{top.rps:,.0f}", top.p50_ms, top.p99_ms]
        rows.append(row)
    hit1 = best(cells[("hit", 1)])[0]
    ratios = [
        ratio(best(cells[("hit", c)])[0].rps, best(cells[("miss", c)])[0].rps) for c in CONNECTIONS
    ]
    semantic = [
        ratio(best(cells[("semantic hit", c)])[0].rps, best(cells[("hit", c)])[0].rps)
        for c in CONNECTIONS
    ]
    summary.check(
        "cache hit p99 through the gateway (c=1) at most 1 ms",
        f"{hit1.p99_ms:.2f} ms",
        hit1.p99_ms,
        1.0,
        at_least=False,
    )
    return "\n".join(
        [
            table(header, rows),
            "",
            f"A hit's p99 at c=1: {hit1.p99_ms:.2f} ms (aim: at most 1 ms). Hit RPS over miss "
            "RPS: "
            + ", ".join(f"c={c} {r:.2f}x" for c, r in zip(CONNECTIONS, ratios, strict=True))
            + ". A semantic hit's RPS over an exact hit's: "
            + ", ".join(f"c={c} {r:.2f}x" for c, r in zip(CONNECTIONS, semantic, strict=True))
            + " (it embeds each question: one more model call through the gateway).",
        ]
    )
