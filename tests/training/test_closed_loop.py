"""The closed loop on the demo classifier, end to end through HTTP: inputs drift, feedback
arrives, the drift alert fires, a dataset is built, a retrain beats production on the
holdout, its rollout goes to 100% and moves the production alias; every step is in
/v1/events and /v1/audit."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from meshgate.config import Settings
from meshgate.models.demo import SIGNATURE, train
from tests.conftest import app_client
from tests.training.helpers import build_dataset, finished, last_event_time
from tests.training.test_training import events_of, labelled

pytestmark = pytest.mark.timeout(600)


def flowers(onnx: Path) -> dict[str, Any]:
    fast = {"max_p95_ratio": None, "min_accuracy_delta": None, "max_drift_psi": None}
    return {
        "name": "flowers",
        "task": "classification",
        "versions": [
            {
                "version": "1",
                "provider": {"type": "onnx", "artifact": str(onnx)},
                "signature": SIGNATURE,
            }
        ],
        "aliases": {"production": "1"},
        "traffic": {"split": {"1": 100}, "sticky": "none"},
        "trainer": {
            "entrypoint": "meshgate.training.demo:train_iris",
            "promote": {
                "metric": "accuracy",
                "margin": 0.05,
                "rollout": {
                    "mode": "canary",
                    "steps": [50, 100],
                    "interval_seconds": 0.3,
                    "min_requests": 5,
                    "analysis": fast,
                },
            },
        },
    }


def iris(shift: float, every: int) -> tuple[list[list[float]], list[int]]:
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True)
    rows = [[a, b, c + shift, d] for a, b, c, d in x.tolist()[::every]]
    return rows, [int(v) for v in y.tolist()[::every]]


async def wait_for(check: Callable[[], Any], within: float = 180) -> Any:
    """``check()`` until it gives something; a failure names what was waited for."""
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        found = await check()
        if found:
            return found
        await asyncio.sleep(0.1)
    raise AssertionError(f"{check.__name__} did not happen within {within} s")


async def test_drift_feedback_dataset_retrain_rollout(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    onnx, _ = train(tmp_path / "artifacts")
    settings = make_settings(
        models=[flowers(onnx)],
        monitoring={
            # The test moves one feature of four: that alone is drift here, whichever other
            # features the order of the calls makes look different from the reference.
            "drift": {"min_samples": 20, "reference_size": 20, "drift_share": 0.25},
            "alerts": {"interval_seconds": 0.2},
        },
    )
    async with app_client(settings) as client:
        # Inputs as the model was trained on them (monitoring's reference), then drifted.
        await labelled(client, "flowers", *iris(0.0, 7))
        before_drift = await last_event_time(client, "meshgate.prediction.feedback")
        drifted, labels = iris(2.5, 2)
        await labelled(client, "flowers", drifted, labels)

        async def drift_alert() -> list[dict[str, Any]]:
            fired = await events_of(client, "meshgate.alert.fired")
            return [e for e in fired if e["data"].get("rule") == "drift"]

        alert = (await wait_for(drift_alert))[0]
        assert alert["data"]["model"] == "flowers"

        dataset = await build_dataset(client, model="flowers", since=before_drift)
        queued = await client.post(
            "/v1/registry/models/flowers/train", json={"dataset": dataset["id"]}
        )
        assert queued.status_code == 202, queued.text
        job = await finished(client, queued.headers["location"], within=300)
        assert job["status"] == "succeeded", job
        result = job["result"]
        assert result["metrics"]["accuracy"] > result["baseline"]["accuracy"] + 0.05
        assert result["rollout"]["started"] is True, result["rollout"]
        path = f"/v1/registry/models/flowers/rollouts/{result['rollout']['rollout']}"

        body = {
            "inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": drifted[0]}]
        }

        last: dict[str, Any] = {}

        async def promoted() -> dict[str, Any] | None:
            for _ in range(5):
                served = await client.post("/v2/models/flowers/infer", json=body)
                assert served.status_code == 200, served.text
            state = (await client.get(path)).json()
            assert state["state"] in ("pending", "progressing", "promoted"), state
            last.update(state)
            return state if state["state"] == "promoted" else None

        try:
            await wait_for(promoted)
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the rollout: {last}") from None
        model = (await client.get("/v1/registry/models/flowers")).json()
        types: set[str] = set()
        for kind in (
            "meshgate.alert.fired",
            "meshgate.training.queued",
            "meshgate.training.succeeded",
            "meshgate.model.version.registered",
            "meshgate.rollout.started",
            "meshgate.rollout.promoted",
        ):
            if await events_of(client, kind):
                types.add(kind)
        audit = (await client.get("/v1/audit", params={"limit": 1000})).json()["records"]

    assert model["aliases"]["production"] == result["version"] == "2"
    assert model["traffic"]["split"] == {"2": 100}
    assert types == {
        "meshgate.alert.fired",
        "meshgate.training.queued",
        "meshgate.training.succeeded",
        "meshgate.model.version.registered",
        "meshgate.rollout.started",
        "meshgate.rollout.promoted",
    }
    actions = {r["action"] for r in audit}
    assert {"training.queued", "training.succeeded", "model.version.registered"} <= actions
    assert any(a.startswith("rollout.") for a in actions), actions
