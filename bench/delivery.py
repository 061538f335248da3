"""Feature flags in process: one flag's evaluation, and what ``"model": "flag:<key>"`` adds
to a chat call.

``evaluate`` is one ``Flag.evaluate`` of a flag with a targeting rule and a 10/90 split, for
a different user each time (the rule misses, the split decides). ``choose`` is the step a
flag-chosen model adds to the chat path before anything else happens: the flag service's
cached flags, the user's profile (read from memory here; the Context Mesh read a server does
is in the context_store section), the evaluation, and the request body written again with
the chosen model. Each call is timed on its own (``perf_counter_ns``). Aim: an evaluation's
p99 at most 20 us.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from bench import summary
from bench.procs import QUICK
from bench.report import table

FLAG = {
    "variants": {"current": "support-chat", "next": "support-chat-next"},
    "default": "current",
    "rules": [{"if": "attributes.tier == 'gold'", "variant": "next"}],
    "fractional": {"next": 10, "current": 90},
}
BODY = {
    "model": "flag:support-model",
    "messages": [{"role": "user", "content": "Where is my parcel? It was due on Monday."}],
}


def percentiles(samples_ns: list[int]) -> tuple[float, float]:
    ordered = sorted(samples_ns)
    p50 = ordered[len(ordered) // 2] / 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] / 1000
    return p50, p99


def evaluate_samples(n: int) -> list[int]:
    from meshgate.delivery.flags import Flag, FlagSpec

    flag = Flag("support-model", FlagSpec.model_validate(FLAG))
    context: dict[str, Any] = {"attributes": {"tier": "silver"}, "preferences": {}}
    users = [f"user-{i}" for i in range(n)]
    clock = time.perf_counter_ns
    samples = []
    for user in users:
        started = clock()
        flag.evaluate(context, user)
        samples.append(clock() - started)
    return samples


async def choose_samples(n: int) -> list[int]:
    from meshgate.delivery.flag_service import FlagService
    from meshgate.delivery.flags import FlagSpec
    from meshgate.foundation import MIGRATIONS
    from meshgate.sql import migrate, open_sql_store

    sql = open_sql_store("sqlite://:memory:")
    await sql.start()
    await migrate(sql, MIGRATIONS)

    class Quiet:
        async def publish(self, *args: Any, **kwargs: Any) -> None:
            return None

        async def record(self, **kwargs: Any) -> dict[str, Any]:
            return {}

    async def profile(tenant: str, user_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
        return {"tier": "silver"}, {"language": "de"}

    async def latest() -> int:
        return 0

    flags = FlagService(
        sql,
        events=Quiet(),
        feed=None,
        latest=latest,
        audit=Quiet(),
        profiles=profile,  # type: ignore[arg-type]
    )
    await flags.put("default", "support-model", FlagSpec.model_validate(FLAG), "bench")
    clock = time.perf_counter_ns
    samples = []
    for i in range(n):
        request = dict(BODY)
        started = clock()
        chosen = await flags.choose_model("default", f"user-{i}", "support-model")
        request["model"] = chosen
        orjson.dumps(request)
        samples.append(clock() - started)
    await sql.close()
    return samples


def run() -> str:
    n = 20_000 if QUICK else 200_000
    evaluate_samples(2_000)  # warm
    e50, e99 = percentiles(evaluate_samples(n))
    c50, c99 = percentiles(asyncio.run(choose_samples(n // 4)))
    summary.check(
        "in-process flag evaluation p99 at most 20 us",
        f"{e99:.1f} us",
        e99,
        20.0,
        at_least=False,
    )
    rows = [
        ["evaluate (rule + 10/90 split)", f"{n:,}", f"{e50:.1f}", f"{e99:.1f}"],
        ['choose ("model": "flag:<key>")', f"{n // 4:,}", f"{c50:.1f}", f"{c99:.1f}"],
    ]
    return "## delivery\n\n" + table(["in process", "calls", "p50 us", "p99 us"], rows)
