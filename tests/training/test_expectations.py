"""Input expectations: learned from a dataset's rows, checked against a call's tensors."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

from meshgate.errors import ValidationFailed
from meshgate.models.demo import SIGNATURE, artifact_dir, train
from meshgate.models.expectations import violations
from meshgate.models.tabular import check_expectations
from meshgate.training.datasets import learn

ROWS = [
    {"input[0]": 5.0, "input[1]": 1.0, "plan": "pro"},
    {"input[0]": 7.0, "input[1]": None, "plan": "free"},
]


def test_learned_ranges_categories_and_missing_shares() -> None:
    assert learn(ROWS) == {
        "input[0]": {"missing": 0.0, "min": 5.0, "max": 7.0},
        "input[1]": {"missing": 0.5, "min": 1.0, "max": 1.0},
        "plan": {"missing": 0.0, "categories": ["free", "pro"]},
    }


def test_a_call_outside_the_expectations_is_named() -> None:
    expected = {"features": learn([{k: v for k, v in r.items() if k != "plan"} for r in ROWS])}
    inside = {"input": np.array([[6.0, 1.0]], dtype=np.float32)}
    assert violations(expected, inside) == []
    outside = {"input": np.array([[9.0, 1.0], [4.0, np.nan]], dtype=np.float32)}
    assert violations(expected, outside) == ["input[0] below 5", "input[0] above 7"]
    assert violations(expected, {}) == ["input[0] is missing"]
    categories = {"features": {"plan": {"missing": 0.0, "categories": ["free", "pro"]}}}
    assert violations(categories, {"plan": np.array(["gold"])}) == [
        "plan has unknown categories gold"
    ]


def test_the_block_action_refuses_the_call() -> None:
    expected = {"action": "block", "features": learn(ROWS[:1])}
    with pytest.raises(ValidationFailed, match="input\\[0\\] above 5"):
        check_expectations(expected, {"input": np.array([[6.0, 1.0]])})
    logged = {**expected, "action": "log"}
    assert check_expectations(logged, {"input": np.array([[6.0, 1.0]])}) == [
        "input[0] above 5",
        "plan is missing",
    ]


async def test_a_blocking_version_refuses_calls_outside_its_expectations_over_http(
    client: httpx.AsyncClient,
) -> None:
    platform = client.app.state.services  # type: ignore[attr-defined]
    onnx, _ = train(artifact_dir(platform.settings))
    created = await client.post(
        "/v1/registry/models", json={"name": "strict", "task": "classification"}
    )
    assert created.status_code == 201
    expectations = {
        "action": "block",
        "features": {"input[0]": {"missing": 0.0, "min": 4.0, "max": 8.0}},
    }
    version = {
        "version": "1",
        "provider": {"type": "onnx", "artifact": str(onnx)},
        "signature": SIGNATURE,
        "metadata": {"expectations": expectations},
    }
    assert (
        await client.post("/v1/registry/models/strict/versions", json=version)
    ).status_code == 201

    def call(row: list[float]) -> dict[str, object]:
        return {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": row}]}

    inside = await client.post("/v2/models/strict/infer", json=call([5.1, 3.5, 1.4, 0.2]))
    assert inside.status_code == 200 and "x-meshgate-validation" not in inside.headers
    outside = await client.post("/v2/models/strict/infer", json=call([9.5, 3.5, 1.4, 0.2]))
    assert outside.status_code == 422 and "input[0] above 8" in outside.text, outside.text
    made = await client.get("/v1/events", params={"type": "meshgate.prediction.made"})
    assert len([e for e in made.json()["events"] if e["data"]["model"] == "strict"]) == 1
