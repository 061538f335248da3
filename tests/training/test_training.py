"""Training jobs through HTTP: a retrained demo classifier, and trainers that fail."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from meshgate.config import Settings
from meshgate.models.demo import SIGNATURE, train
from tests.conftest import app_client
from tests.monitoring.helpers import report_when
from tests.training.helpers import (
    build_dataset,
    conforms,
    finished,
    iris_shifted,
    labelled,
)

# Each job starts a Python process that imports scikit-learn.
pytestmark = pytest.mark.timeout(300)


async def events_of(client: httpx.AsyncClient, type_: str) -> list[dict[str, Any]]:
    page = await client.get("/v1/events", params={"type": type_, "limit": 1000})
    return list(page.json()["events"])


async def test_retraining_beats_production_on_drifted_inputs(
    make_settings: Callable[..., Settings],
) -> None:
    rows, labels = iris_shifted()
    async with app_client(make_settings(demo=True)) as client:
        await labelled(client, "iris", rows, labels)
        dataset = await build_dataset(client, model="iris", versions=["1"])
        queued = await client.post(
            "/v1/registry/models/iris/train", json={"dataset": dataset["id"], "params": {"C": 2.0}}
        )
        assert queued.status_code == 202, queued.text
        await conforms(client, "post", "/v1/registry/models/{name}/train", 202, queued.json())
        job = await finished(client, queued.headers["location"], within=240)
        assert job["status"] == "succeeded", job
        model = (await client.get("/v1/registry/models/iris")).json()
        served = await client.post(
            f"/v2/models/iris/versions/{job['result']['version']}/infer",
            json={
                "inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": rows[0]}]
            },
        )
        strange = await client.post(
            f"/v2/models/iris/versions/{job['result']['version']}/infer",
            json={
                "inputs": [
                    {"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [50, 3, 4, 1]}
                ]
            },
        )
        trained = await events_of(client, "meshgate.training.succeeded")
        made = await events_of(client, "meshgate.prediction.made")
        # Violations feed monitoring: the report counts the calls that broke expectations.
        report = await report_when(
            client,
            "iris",
            lambda r: any(v["version"] == "3" and v["requests"] >= 2 for v in r["versions"]),
        )
        invalid = {v["version"]: v["invalid_inputs"] for v in report["versions"]}
        rollout = (
            await client.get(
                f"/v1/registry/models/iris/rollouts/{job['result']['rollout']['rollout']}"
            )
        ).json()
        audit = (await client.get("/v1/audit", params={"action": "training.*"})).json()

    result = job["result"]
    assert result["version"] == "3" and result["parent_version"] == "1"
    assert result["parameters"] == {"C": 2.0}
    assert result["dataset"] == {
        "id": dataset["id"],
        "sha256": dataset["sha256"],
        "rows": dataset["rows"],
    }
    assert result["code_version"]["trainer"] == "meshgate.training.demo:train_iris"
    assert len(result["code_version"]["source_sha256"]) == 64
    metrics, baseline = result["metrics"], result["baseline"]
    assert set(metrics) == {"accuracy", "f1", "auc"} and baseline["version"] == "1"
    assert metrics["accuracy"] >= baseline["accuracy"] + 0.3, (metrics, baseline)
    # Better by the margin: a rollout of the new version against its parent has started.
    assert result["rollout"]["started"] is True and result["rollout"]["metric"] == "accuracy"
    assert rollout["candidate"] == "3" and rollout["baseline"] == "1"
    assert rollout["state"] == "progressing" and rollout["steps"] == [10, 50, 100]
    assert model["traffic"]["split"] == {"1": 90, "3": 10}

    version = next(v for v in model["versions"] if v["version"] == "3")
    assert version["provider"]["type"] == "sklearn"
    assert version["provider"]["artifact"] == result["artifact"].lower()
    assert version["provider"]["artifact"].startswith("sha256:")
    assert version["metadata"]["lineage"]["dataset"]["id"] == dataset["id"]
    assert version["metadata"]["lineage"]["metrics"] == metrics
    assert version["signature"] == SIGNATURE
    assert model["aliases"]["production"] == "1"  # moving it is the rollout's work
    assert served.status_code == 200, served.text
    assert served.json()["outputs"][0]["data"] == [labels[0]]
    # Data validation: expectations learned from the dataset; the demo's action is warn.
    expected = version["metadata"]["expectations"]
    assert expected["action"] == "warn" and expected["dataset"] == dataset["id"]
    assert expected["features"]["input[0]"]["max"] < 50
    assert "x-meshgate-validation" not in served.headers
    assert (
        strange.status_code == 200 and "input[0] above" in strange.headers["x-meshgate-validation"]
    )
    assert made[-1]["data"]["violations"] == [strange.headers["x-meshgate-validation"]]
    assert invalid == {"1": 0, "2": 0, "3": 1}
    assert [e["data"]["job"] for e in trained] == [dataset["id"], job["id"]]
    assert trained[1]["data"]["version"] == "3" and trained[1]["data"]["metrics"] == metrics
    actions = [r["action"] for r in audit["records"]]
    assert "training.queued" in actions and "training.succeeded" in actions


def failing_model(name: str, artifact: Path, **trainer: Any) -> dict[str, Any]:
    return {
        "name": name,
        "task": "classification",
        "versions": [
            {
                "version": "1",
                "provider": {"type": "onnx", "artifact": str(artifact)},
                "signature": SIGNATURE,
            }
        ],
        "aliases": {"production": "1"},
        "trainer": trainer,
    }


async def test_a_failing_trainer_fails_its_job_and_registers_nothing(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    onnx, _ = train(tmp_path / "artifacts")
    models = [
        failing_model("raises", onnx, entrypoint="tests.training.trainers:boom"),
        failing_model("slow", onnx, entrypoint="tests.training.trainers:slow", timeout_seconds=4),
        failing_model("hog", onnx, entrypoint="tests.training.trainers:hog", memory_mb=1024),
    ]
    rows, labels = iris_shifted()
    async with app_client(make_settings(models=models)) as client:
        jobs = {}
        for model in models:
            name = model["name"]
            await labelled(client, name, rows[:8], labels[:8])
            dataset = await build_dataset(client, model=name)
            queued = await client.post(
                f"/v1/registry/models/{name}/train", json={"dataset": dataset["id"]}
            )
            assert queued.status_code == 202, queued.text
            jobs[name] = queued.headers["location"]
        done = {name: await finished(client, path, within=240) for name, path in jobs.items()}
        versions = {
            name: [
                v["version"]
                for v in (await client.get(f"/v1/registry/models/{name}")).json()["versions"]
            ]
            for name in jobs
        }
        failed = await events_of(client, "meshgate.training.failed")
        audit = (await client.get("/v1/audit", params={"action": "training.failed"})).json()

    assert {name: job["status"] for name, job in done.items()} == dict.fromkeys(jobs, "failed")
    assert "ValueError: the trainer cannot cope" in done["raises"]["error"]
    assert "out of time" in done["slow"]["error"]
    assert "out of memory" in done["hog"]["error"], done["hog"]["error"]
    assert all(job["result"] is None for job in done.values())
    assert versions == {name: ["1"] for name in jobs}
    assert sorted(e["data"]["model"] for e in failed) == sorted(jobs)
    assert len(audit["records"]) == len(jobs)


def test_a_trainer_with_a_bad_rollout_is_refused_when_the_config_is_read() -> None:
    from pydantic import ValidationError

    from meshgate.models.config import ModelDeclaration

    def declared(rollout: dict[str, Any]) -> dict[str, Any]:
        promote = {"metric": "accuracy", "rollout": rollout}
        trainer = {"entrypoint": "meshgate.training.demo:train_iris", "promote": promote}
        return {"name": "m", "task": "classification", "trainer": trainer}

    assert ModelDeclaration.model_validate(declared({"steps": [10, 100]})).trainer is not None
    for rollout, words in (
        ({"steps": [50, 10]}, "increasing"),
        ({"mode": "sideways"}, "mode"),
        ({"candidate": "7"}, "filled in"),
    ):
        with pytest.raises(ValidationError, match=words):
            ModelDeclaration.model_validate(declared(rollout))


async def test_training_requests_that_cannot_run_are_refused(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/v1/registry/models", json={"name": "plain", "task": "classification"}
    )
    assert created.status_code == 201
    dataset = await build_dataset(client, model="plain")
    no_trainer = await client.post(
        "/v1/registry/models/plain/train", json={"dataset": dataset["id"]}
    )
    assert no_trainer.status_code == 409 and "config file" in no_trainer.json()["detail"]
    # A trainer can never come through the API.
    sneaky = await client.post(
        "/v1/registry/models",
        json={"name": "sneaky", "trainer": {"entrypoint": "os:system"}},
    )
    assert sneaky.status_code == 422
    for path, body, status in (
        ("/v1/registry/models/nope/train", {"dataset": dataset["id"]}, 404),
        ("/v1/registry/models/plain/train", {}, 422),
        ("/v1/registry/models/plain/train", {"dataset": "ds_" + "0" * 20}, 409),
        (
            "/v1/registry/models/plain/train",
            {"dataset": dataset["id"], "entrypoint": "os:system"},
            422,
        ),
    ):
        answer = await client.post(path, json=body)
        assert answer.status_code == status, (path, body, answer.text)
    assert (await client.get("/v1/jobs/job_" + "0" * 20)).status_code == 404
