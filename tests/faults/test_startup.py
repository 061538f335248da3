"""Start-up work every node repeats is safe when several nodes start at once on one database:
migrations, the bootstrap admin key, the demo models and their artifacts. A node whose
database does not answer starts all the same, and answers only its probes until it does."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from meshgate.app import create_app
from meshgate.config import Settings
from meshgate.core.health import Readiness
from meshgate.errors import BackendUnavailable
from meshgate.startup import FIRST_ATTEMPT_SECONDS, Startup
from tests.conftest import ADMIN_KEY, LOOPBACK, app_client, free_port
from tests.faults.conftest import SLACK

IRIS = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [5, 3, 1, 0]}]}


async def start_together(apps: list[Any]) -> list[Any]:
    contexts = [app.router.lifespan_context(app) for app in apps]
    await asyncio.gather(*(c.__aenter__() for c in contexts))
    return contexts


async def test_nodes_starting_together_share_keys_models_and_artifacts(
    make_settings: Callable[..., Settings], postgres_url: str, tmp_path: Path
) -> None:
    def node(i: int, **overrides: Any) -> Settings:
        # Each node has its own data directory, as on separate machines.
        return make_settings(
            database_url=postgres_url,
            data_dir=tmp_path / f"node{i}",
            demo=True,
            key_pepper="shared-pepper",
            **overrides,
        )

    # Generated bootstrap key: exactly one node creates it, none crashes.
    apps = [create_app(node(i, admin_key=None)) for i in range(3)]
    contexts = await start_together(apps)
    for context in contexts:
        await context.__aexit__(None, None, None)

    # The configured key, twice at once, then a third node later: every one serves iris,
    # whose artifacts none of them has in its data directory beforehand.
    apps = [create_app(node(i)) for i in (3, 4)]
    contexts = await start_together(apps)
    try:
        async with app_client(node(5)) as late:
            iris = (await late.get("/v1/registry/models/iris")).json()
            artifacts = {v["provider"]["artifact"] for v in iris["versions"]}
            assert all(a.startswith("sha256:") for a in artifacts)
            answer = await late.post("/v2/models/iris/infer", json=IRIS)
            assert answer.status_code == 200, answer.text
            keys = (await late.get("/v1/admin/keys")).json()["keys"]
            assert [k["id"] for k in keys] == ["key_bootstrap_admin"]
            assert late.headers["Authorization"] == f"Bearer {ADMIN_KEY}"
    finally:
        for context in contexts:
            await context.__aexit__(None, None, None)


async def test_a_node_waiting_for_postgres_answers_probes_and_metrics_and_503_otherwise(
    make_settings: Callable[..., Settings],
) -> None:
    down = f"postgresql://postgres:pw@127.0.0.1:{free_port()}/none"  # nothing listens there
    security = {"egress_allow": LOOPBACK, "metrics_token": "scrape-token"}
    app = create_app(make_settings(database_url=down, security=security))
    lifespan = app.router.lifespan_context(app)
    started = time.monotonic()
    await lifespan.__aenter__()
    try:
        assert time.monotonic() - started < FIRST_ATTEMPT_SECONDS + SLACK
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://mesh.test") as http:
            assert (await http.get("/healthz")).status_code == 200
            assert (await http.get("/v2/health/live")).status_code == 200
            assert (await http.get("/v2/health/ready")).status_code == 503
            ready = await http.get("/readyz")
            assert ready.status_code == 503
            assert set(ready.json()["failing"]) == {"starting", "sql"}
            scrape = {"Authorization": "Bearer scrape-token"}
            assert (await http.get("/metrics", headers=scrape)).status_code == 200
            admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
            for path in ("/v1/whoami", "/v1/admin/keys", "/docs"):
                answer = await http.get(path, headers=admin)
                assert answer.status_code == 503, answer.text
                assert answer.headers["retry-after"].isdigit()
                assert answer.headers["content-type"] == "application/problem+json"
                assert answer.json()["type"].endswith("/backend-unavailable")
    finally:
        stopping = time.monotonic()
        await lifespan.__aexit__(None, None, None)  # cancels the retries
    assert time.monotonic() - stopping < SLACK


async def test_a_start_up_waiting_for_the_store_that_fails_otherwise_stops_the_process() -> None:
    """A failure other than the store being away (a schema the node may not change) is not
    retried: the process stops, as after a first attempt failing so, and a supervisor starts
    a new one (services are not made to start twice)."""
    stopped = asyncio.Event()
    startup = Startup(give_up=stopped.set)
    attempts: list[int] = []

    async def attempt() -> None:
        attempts.append(len(attempts))
        if len(attempts) < 3:
            raise BackendUnavailable("SQL store (PostgreSQL) is unavailable; retry later")
        raise PermissionError("permission denied for schema public")

    async def rest() -> None:
        raise AssertionError("the rest of the start-up does not run")

    startup.wait(BackendUnavailable("down"), Readiness(), attempt, rest)
    await asyncio.wait_for(stopped.wait(), 10)
    assert len(attempts) == 3 and startup.gave_up
    assert startup.waiting  # requests still get the 503 until the process is gone
    await startup.stop()
