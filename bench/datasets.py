"""Dataset build throughput: predictions joined with their feedback, from the embedded log.

A fresh SQLite event log (the default backend) holds N tabular predictions (four features,
one row each, a tenth of them by users who are then erased) and feedback on half of them. The
build reads the whole log through the event service (personal parts decrypted, erased ones
detected), joins, and writes Parquet; the figure is log events read per second and dataset
rows written per second. The reference is the plain Parquet export of the same events
(``GET /v1/events/export?format=parquet``'s code path), which reads the same pages without the
join: their ratio is what the join and the typed columns cost.

Runnable alone: ``python -m bench.datasets``.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path

from bench.report import ratio, table
from meshgate.config import Settings
from meshgate.events import export
from meshgate.events.base import Filter
from meshgate.events.catalogue import PREDICTION_FEEDBACK, PREDICTION_MADE
from meshgate.events.envelope import now
from meshgate.events.module import build_events
from meshgate.events.service import EventService
from meshgate.foundation import MIGRATIONS
from meshgate.sql import SqlStore, migrate, open_sql_store
from meshgate.training.datasets import DatasetQuery, build

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0", "false")
PREDICTIONS = 5_000 if QUICK else 40_000
BATCH = 500
TENANT = "bench"


async def fill(directory: Path) -> tuple[EventService, SqlStore]:
    settings = Settings(data_dir=directory, key_pepper="bench-pepper")
    sql = open_sql_store(settings.sql_url)
    await sql.start()
    await migrate(sql, MIGRATIONS)
    events = build_events(settings, sql, b"bench-pepper")
    await events.start()
    for start in range(0, PREDICTIONS, BATCH):
        batch = []
        for n in range(start, min(start + BATCH, PREDICTIONS)):
            user = f"user-{n % 500}"
            data = {
                "prediction_id": f"p{n}",
                "tenant": TENANT,
                "model": "iris",
                "version": "1",
                "task": "classification",
                "status": "ok",
                "shadow": False,
                "latency_ms": 1.0,
                "trace_id": None,
                "context_fields": [],
                "inputs_hash": "h",
                "inputs": {"input": [[5.1 + n % 7, 3.5, 1.4, 0.2]]},
                "outputs": {"label": [n % 3]},
            }
            batch.append(
                events.publish(
                    PREDICTION_MADE.name,
                    tenant=TENANT,
                    data=data,
                    personal={"user_id": user},
                    user_id=user,
                    id=f"p{n}",
                )
            )
            if n % 2 == 0:
                batch.append(
                    events.publish(
                        PREDICTION_FEEDBACK.name,
                        tenant=TENANT,
                        data={"prediction_id": f"p{n}", "label": n % 3},
                    )
                )
        await asyncio.gather(*batch)
    for u in range(0, 500, 10):  # a tenth of the users erased
        await events.shred_user(TENANT, f"user-{u}")
    return events, sql


async def measure() -> str:
    with tempfile.TemporaryDirectory(prefix="bench-datasets-") as tmp:
        events, sql = await fill(Path(tmp))
        total = await events.log.last_sequence()
        query = DatasetQuery(TENANT, "iris", None, None, now())

        async def quiet(read: int, of: int) -> None:
            return None

        builds, exports = [], []
        rows = 0
        for _ in range(2 if QUICK else 3):
            started = time.perf_counter()
            built = await build(events, query, quiet)
            builds.append(time.perf_counter() - started)
            rows = built.manifest["rows"]
            started = time.perf_counter()
            await export.parquet_bytes(events, Filter(tenant=TENANT), None)
            exports.append(time.perf_counter() - started)
        await events.close()
        await sql.close()
    build_s, export_s = min(builds), min(exports)
    return "\n\n".join(
        [
            "## datasets",
            f"Dataset build from the embedded SQLite log: {total:,} events "
            f"({PREDICTIONS:,} predictions, feedback on half, a tenth of the users erased), "
            f"{rows:,} rows out. Best of {len(builds)} runs.",
            table(
                ["what", "seconds", "events read/s", "rows written/s"],
                [
                    ["dataset build (join, Parquet)", build_s, total / build_s, rows / build_s],
                    [
                        "plain Parquet export (reference)",
                        export_s,
                        total / export_s,
                        total / export_s,
                    ],
                ],
            ),
            f"Build time over export time: {ratio(build_s, export_s):.2f}x.",
        ]
    )


def run() -> str:
    return asyncio.run(measure())


if __name__ == "__main__":
    print(run())
