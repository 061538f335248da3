"""The headline figure: POST /v1/chat/completions through Meshgate against the references.

The mock upstream and wrk share core 1; each proxy is pinned to core 0 and every proxy runs
for the whole section (idle ones cost nothing), so the cells can be interleaved:

- ``direct``: wrk against the mock upstream itself (the ceiling, and the latency floor);
- ``pass-through``: a bare aiohttp proxy with no features (the floor of a Python proxy);
- ``LiteLLM``: the LiteLLM proxy, one worker, configured for speed;
- ``Meshgate``: the full path (authentication, rate limit, context enrichment for a user with
  a profile, routing, the prediction event, metrics), tracing off;
- ``Meshgate + tracing``: the same with an OTLP exporter sending to a sink in the upstream.
"""

from __future__ import annotations

import math
from pathlib import Path

import httpx
import orjson

from bench import summary
from bench.litellm_proxy import LiteLLM
from bench.meshgate_server import CHAT_MODEL, Meshgate, NotAvailable, chat_body
from bench.mock_upstream import MODEL
from bench.procs import (
    LOAD_CORE,
    PROXY_CORE,
    Cells,
    Proc,
    best,
    free_port,
    interleaved,
    least_cpu,
    lua_script,
    python_server,
)
from bench.report import pct, ratio, table

CONNECTIONS = (1, 8, 32)
# url, model name, auth headers, pids of the server processes
Variant = tuple[str, str, dict[str, str], list[int]]
STREAM_CONNECTIONS = (8,)
JSON = {"Content-Type": "application/json"}


def script(model: str, auth: dict[str, str], *, stream: bool = False) -> Path:
    return lua_script("POST", orjson.dumps(chat_body(model, stream=stream)), {**JSON, **auth})


def start_upstream(core: str | None = LOAD_CORE) -> tuple[Proc, str]:
    port = free_port()
    proc = python_server("mock-upstream", "mock_upstream", port, core)
    url = f"http://127.0.0.1:{port}"
    proc.wait_http(url + "/v1/models")
    return proc, url


def run() -> str:
    procs: list[Proc] = []
    notes: list[str] = []
    try:
        upstream, up_url = start_upstream()
        procs.append(upstream)
        pt_port = free_port()
        passthrough = python_server(
            "passthrough", "passthrough", pt_port, PROXY_CORE, "--upstream", up_url
        )
        procs.append(passthrough)
        pt_url = f"http://127.0.0.1:{pt_port}"
        passthrough.wait_http(pt_url + "/v1/chat/completions")
        variants: dict[str, Variant] = {
            "direct": (up_url, MODEL, {}, upstream.pids()),
            "pass-through": (pt_url, MODEL, {}, passthrough.pids()),
        }
        try:
            litellm = LiteLLM(up_url, core=PROXY_CORE)
            procs.append(litellm.proc)
            variants["LiteLLM"] = (litellm.url, MODEL, litellm.auth, litellm.proc.pids())
        except Exception as exc:
            notes.append(f"LiteLLM not measured: {str(exc)[:300]}")
        otlp = {"MESHGATE_MONITORING__OTLP_ENDPOINT": up_url + "/v1/traces"}
        for name, env in (("Meshgate", {}), ("Meshgate + tracing", otlp)):
            try:
                label = "chat-" + name.lower().replace(" + ", "-")
                mesh = Meshgate(label, core=PROXY_CORE, env=env)
                procs.append(mesh.proc)
                mesh.register_chat_model(up_url)
                variants[name] = (mesh.url, CHAT_MODEL, mesh.auth, mesh.proc.pids())
            except NotAvailable as exc:
                notes.append(f"{name} not measured: not available ({exc}).")
            except Exception as exc:
                notes.append(f"{name} not measured: {str(exc)[:300]}")
        for name, (url, model, auth, _) in variants.items():
            check(name, url, model, auth)
        plain = interleaved(
            {
                n: (u + "/v1/chat/completions", script(m, a), pids)
                for n, (u, m, a, pids) in variants.items()
            },
            CONNECTIONS,
        )
        streamed = interleaved(
            {
                n: (u + "/v1/chat/completions", script(m, a, stream=True), pids)
                for n, (u, m, a, pids) in variants.items()
            },
            STREAM_CONNECTIONS,
            warm_up=False,
        )
        if "Meshgate + tracing" in variants:
            exports = httpx.get(up_url + "/stats").json()["trace_exports"]
            notes.append(f"The OTLP sink received {exports} trace export request(s) in the run.")
    finally:
        for p in reversed(procs):
            p.stop()
    return render(list(variants), plain, streamed, notes)


def check(name: str, url: str, model: str, auth: dict[str, str]) -> None:
    """One request of each kind answers 200 with a completion, before any load."""
    body = chat_body(model)
    r = httpx.post(url + "/v1/chat/completions", json=body, headers=auth, timeout=30)
    if r.status_code != 200 or "choices" not in r.json():
        raise RuntimeError(f"{name}: chat answered {r.status_code}: {r.text[:300]}")
    body = chat_body(model, stream=True)
    r = httpx.post(url + "/v1/chat/completions", json=body, headers=auth, timeout=30)
    if r.status_code != 200 or b"[DONE]" not in r.content:
        raise RuntimeError(f"{name}: streamed chat answered {r.status_code}: {r.text[:300]}")


def render(names: list[str], plain: Cells, streamed: Cells, notes: list[str]) -> str:
    header = ["variant"]
    for c in CONNECTIONS:
        header += [f"c={c} RPS (spread)", f"c={c} p50 ms", f"c={c} p99 ms"]
    header += [f"stream c={c} RPS" for c in STREAM_CONNECTIONS]
    header += ["added p50 over direct at c=1, ms", "CPU µs/request (c=8)", "errors"]
    rows = []
    for name in names:
        row: list[object] = [name]
        for c in CONNECTIONS:
            top, spread = best(plain[(name, c)])
            row += [f"{top.rps:,.0f} (±{100 * spread:.0f}%)", top.p50_ms, top.p99_ms]
        row += [best(streamed[(name, c)])[0].rps for c in STREAM_CONNECTIONS]
        added = best(plain[(name, 1)])[0].p50_ms - best(plain[("direct", 1)])[0].p50_ms
        errors = sum(
            r.errors
            for cells in (plain, streamed)
            for k, v in cells.items()
            if k[0] == name
            for r in v
        )
        rows.append([*row, added, least_cpu(plain[(name, 8)]), errors])

    def rps(name: str, c: int) -> float:
        return best(plain[(name, c)])[0].rps if (name, c) in plain else math.nan

    def cpu(name: str) -> float:
        return least_cpu(plain[(name, 8)]) if (name, 8) in plain else math.nan

    def p50(name: str) -> float:
        return best(plain[(name, 1)])[0].p50_ms if (name, 1) in plain else math.nan

    ratio_rows = []
    for a, b, target in (
        ("Meshgate", "LiteLLM", "≥ 20x at c=8, 32"),
        ("Meshgate", "pass-through", "≥ 75% at c=8, 32"),
        ("Meshgate + tracing", "Meshgate", "tracing cost"),
    ):
        ratio_rows.append(
            [
                f"{a} / {b}",
                *(fmt_ratio(ratio(rps(a, c), rps(b, c))) for c in CONNECTIONS),
                fmt_ratio(ratio(cpu(b), cpu(a))),
                target,
            ]
        )
    added = p50("Meshgate") - p50("pass-through")
    for c in (8, 32):
        for ref, limit, text in (("LiteLLM", 20, "≥ 20x"), ("pass-through", 0.75, "≥ 75%")):
            r = ratio(rps("Meshgate", c), rps(ref, c))
            name = f"chat RPS Meshgate / {ref} at c={c}: {text}"
            summary.check(name, fmt_ratio(r), r, limit, at_least=True)
    summary.check(
        "chat p50 at c=1, Meshgate over the pass-through: ≤ 0.2 ms",
        fmt_ms(added),
        added,
        0.2,
        at_least=False,
    )
    parts = [
        "## Chat: Meshgate against LiteLLM and a bare pass-through",
        "Non-streaming `POST /v1/chat/completions` (streamed as SSE with usage in the stream "
        "column); proxies pinned to core 0, mock upstream and wrk to core 1; best of the "
        "repetitions, spread = (best - worst) / best; latency from the best repetition. "
        "CPU: user + system time of the proxy's processes per request (for `direct`, the "
        "upstream's), least of the repetitions: the figure least moved by other load.",
        table(header, rows),
        table(
            ["RPS ratio", *(f"c={c}" for c in CONNECTIONS), "by CPU/request (c=8)", "target"],
            ratio_rows,
        ),
        "The CPU ratio is the inverse ratio of CPU time per request: the throughput each "
        "would reach on a core of its own, whatever else the machine was doing.",
        f"Meshgate's added p50 at c=1 over the pass-through: {fmt_ms(added)} "
        "(target ≤ 0.2 ms: all features together).",
    ]
    if notes:
        parts.append("\n".join(f"- {n}" for n in notes))
    return "\n\n".join(parts)


def fmt_ratio(value: float) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:.1f}x" if value >= 2 else pct(value)


def fmt_ms(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2f} ms"
