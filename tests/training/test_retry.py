"""A training job retried after its version was registered registers nothing more."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from meshgate.config import Settings
from meshgate.models.config import VersionCreate
from meshgate.training.runner import JobRunner
from tests.conftest import app_client
from tests.training.helpers import build_dataset, finished, iris_shifted, labelled

pytestmark = pytest.mark.timeout(300)


class Stop(asyncio.CancelledError):
    """What the runner's task sees when its node stops (a cancellation), raised on purpose."""


@pytest.mark.parametrize("stops", ["after registering", "before marking the job done"])
async def test_a_runner_that_stops_after_registering_leaves_one_version(
    make_settings: Callable[..., Settings], stops: str
) -> None:
    rows, labels = iris_shifted()
    async with app_client(make_settings(demo=True)) as client:
        platform = client.app.state.services  # type: ignore[attr-defined]
        service, first = platform.training, platform.jobs
        await labelled(client, "iris", rows, labels)
        dataset = await build_dataset(client, model="iris", versions=["1"])

        stopped = asyncio.Event()
        registered: list[str] = []
        register, finish = service.registrar.register, service.jobs.finish

        async def register_then_stop(
            tenant: str, model: str, version: VersionCreate, actor: str
        ) -> dict[str, Any]:
            done: dict[str, Any] = await register(tenant, model, version, actor)
            registered.append(done["version"])
            if stops == "after registering" and not stopped.is_set():
                stopped.set()
                raise Stop
            return done

        async def stop_before_finishing(job_id: str, holder: str, **outcome: Any) -> bool:
            if stops == "before marking the job done" and not stopped.is_set():
                stopped.set()
                raise Stop
            return bool(await finish(job_id, holder, **outcome))

        service.registrar.register = register_then_stop
        service.jobs.finish = stop_before_finishing
        queued = await client.post(
            "/v1/registry/models/iris/train", json={"dataset": dataset["id"]}
        )
        assert queued.status_code == 202, queued.text
        location = queued.headers["location"]
        await asyncio.wait_for(stopped.wait(), 240)
        # The node is gone: its runner stops and lets the lease go, the job still running.
        await first.close()
        left = (await client.get(location)).json()

        # Another node's runner takes the lease over and runs the job again.
        second = JobRunner(service, first.jobs, platform.leases, platform.settings.training)
        await second.start()
        try:
            job = await finished(client, location, within=240)
        finally:
            await second.close()
        model = (await client.get("/v1/registry/models/iris")).json()
        rollouts = (await client.get("/v1/registry/models/iris/rollouts")).json()["rollouts"]
        succeeded = (
            await client.get("/v1/events", params={"type": "meshgate.training.succeeded"})
        ).json()["events"]

    assert left["status"] == "running" and left["attempts"] == 1
    assert job["status"] == "succeeded" and job["attempts"] == 2, job
    # One version of the job: the retry found it by the job id in its lineage.
    assert registered == ["3"]
    assert [v["version"] for v in model["versions"]] == ["1", "2", "3"]
    lineage = model["versions"][-1]["metadata"]["lineage"]
    assert lineage["job"] == job["id"] and lineage["metrics"] == job["result"]["metrics"]
    assert job["result"]["version"] == "3" and job["result"]["parent_version"] == "1"
    # One rollout of it, whether the first attempt started it or the retry did.
    assert [(r["candidate"], r["baseline"]) for r in rollouts] == [("3", "1")]
    assert job["result"]["rollout"]["started"] is True
    assert job["result"]["rollout"]["rollout"] == rollouts[0]["id"]
    assert [e["data"]["job"] for e in succeeded] == [dataset["id"], job["id"]]
