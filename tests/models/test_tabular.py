"""Tabular models in process: Python entry points from the config, context inputs, skops
artifacts under the trusted-types check, V2 upstreams, and prediction events with features."""

from __future__ import annotations

import pickle
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import skops.io as sio
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from meshgate.config import Settings
from meshgate.errors import Conflict
from tests.conftest import app_client
from tests.models.fake_openai import FakeOpenAI

RISK = {
    "name": "risk",
    "task": "regression",
    "context_policy": {"allow": ["attributes.age"]},
    "versions": [
        {
            "version": "1",
            "provider": {"type": "python", "entrypoint": "tests.models.entrypoints:risk"},
            "signature": {
                "inputs": [
                    {"name": "income", "datatype": "FP64", "shape": [-1, 1]},
                    {
                        "name": "age",
                        "datatype": "FP64",
                        "shape": [-1, 1],
                        "from_context": "attributes.age",
                    },
                ],
                "outputs": [{"name": "score", "datatype": "FP64", "shape": [-1, 1]}],
            },
        }
    ],
}


def income(*values: float, **extra: Any) -> dict[str, Any]:
    inputs = [{"name": "income", "datatype": "FP64", "shape": [len(values), 1], "data": values}]
    inputs += [
        {"name": k, "datatype": "FP64", "shape": [len(v), 1], "data": v} for k, v in extra.items()
    ]
    return {"inputs": inputs}


@pytest.fixture
async def tabular(make_settings: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(make_settings(models=[RISK])) as client:
        yield client


async def test_context_fills_the_inputs_the_caller_does_not_send(
    tabular: httpx.AsyncClient,
) -> None:
    patched = await tabular.patch(
        "/v1/context/users/bob", json={"attributes": {"age": 40, "postcode": "1010"}}
    )
    assert patched.status_code in (200, 201), patched.text
    response = await tabular.post(
        "/v2/models/risk/infer", json=income(50_000, 20_000), headers={"x-user-id": "bob"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["outputs"][0]["data"] == [90.0, 60.0]

    sent = await tabular.post("/v2/models/risk/infer", json={**income(1000, age=[1]), "id": "r1"})
    assert sent.json()["outputs"][0]["data"] == [2.0]  # the caller's value wins
    assert sent.json()["id"] == "r1"  # echoed, as V2 says; the prediction has its own id
    again = await tabular.post("/v2/models/risk/infer", json={**income(1000, age=[1]), "id": "r1"})
    assert again.headers["x-prediction-id"] != sent.headers["x-prediction-id"]

    missing = await tabular.post("/v2/models/risk/infer", json=income(1000))
    assert missing.status_code == 400
    assert "input 'age'" in missing.json()["error"] and "attributes.age" in missing.json()["error"]

    events = (
        await tabular.get("/v1/events", params={"type": "meshgate.prediction.made", "limit": 100})
    ).json()["events"]
    first = next(e for e in events if e["id"] == response.headers["x-prediction-id"])
    assert first["data"]["context_fields"] == ["attributes.age"]
    assert first["data"]["inputs"] == {"income": [[50000.0], [20000.0]], "age": [[40.0], [40.0]]}
    assert first["data"]["outputs"] == {"score": [[90.0], [60.0]]}


async def test_artifacts_from_the_api_are_checked_never_unpickled(
    tabular: httpx.AsyncClient, make_settings: Callable[..., Settings]
) -> None:
    root = Path(make_settings().data_dir) / "models"
    root.mkdir(parents=True, exist_ok=True)
    x, y = load_iris(return_X_y=True)
    sio.dump(DecisionTreeClassifier(max_depth=2).fit(x, y), root / "tree.skops")
    (root / "tree.pkl.skops").write_bytes(pickle.dumps({"not": "a skops file"}))
    model = {"name": "tree", "task": "classification"}
    assert (await tabular.post("/v1/registry/models", json=model)).status_code == 201

    def version(name: str, artifact: str, **extra: Any) -> dict[str, Any]:
        provider = {"type": "sklearn", "artifact": artifact, **extra}
        return {"version": name, "provider": provider}

    path = "/v1/registry/models/tree/versions"
    refused = await tabular.post(path, json=version("1", "tree.skops"))
    assert refused.status_code == 400 and "sklearn.tree._tree.Tree" in refused.text
    pickled = await tabular.post(path, json=version("1", "tree.pkl.skops"))
    assert pickled.status_code == 400 and "not a readable skops file" in pickled.text
    missing = await tabular.post(path, json=version("1", "gone.skops"))
    assert missing.status_code == 400 and "not found" in missing.text
    evil = await tabular.post(path, json=version("1", "tree.skops", trusted=["builtins.eval"]))
    assert evil.status_code == 422
    assert (await tabular.get("/v1/registry/models/tree")).json()["versions"] == []

    trusted = version("1", "tree.skops", trusted=["sklearn.tree._tree.Tree"])
    assert (await tabular.post(path, json=trusted)).status_code == 201
    body = {
        "inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 4], "data": [6.7, 3, 5.2, 2.3]}]
    }
    answer = await tabular.post("/v2/models/tree/infer", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"][0] == {
        "name": "label",
        "datatype": "INT64",
        "shape": [1],
        "data": [2],
    }


async def test_v2_upstream(tabular: httpx.AsyncClient, primary: FakeOpenAI) -> None:
    assert (
        await tabular.post("/v1/registry/models", json={"name": "remote", "task": "regression"})
    ).status_code == 201
    spec = {
        "version": "1",
        "provider": {"type": "v2", "url": primary.base_url[:-3], "model": "dbl"},
    }
    assert (await tabular.post("/v1/registry/models/remote/versions", json=spec)).status_code == 201
    body = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [2], "data": [1.5, 2]}]}
    answer = await tabular.post("/v2/models/remote/infer", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"] == [
        {"name": "doubled", "datatype": "FP32", "shape": [2], "data": [3.0, 4.0]}
    ]
    assert "traceparent" in primary.headers[-1]


async def test_config_is_applied_at_start_and_its_versions_stay_immutable(
    make_settings: Callable[..., Settings],
) -> None:
    async with app_client(make_settings(models=[RISK])) as client:
        history = (await client.get("/v1/registry/models/risk/history")).json()["history"]
        assert [(h["change"], h["actor"]) for h in history] == [
            ("model.registered", "config"),
            ("model.version.registered", "config"),
        ]
    async with app_client(make_settings(models=[RISK])) as client:  # applied again: no change
        assert len((await client.get("/v1/registry/models/risk/history")).json()["history"]) == 2
    version = {**RISK["versions"][0], "provider": {"type": "python", "entrypoint": "os:getcwd"}}
    changed = {**RISK, "versions": [version]}
    with pytest.raises(Conflict, match="immutable"):
        async with app_client(make_settings(models=[changed])):
            pass


async def test_a_version_that_cannot_load_falls_back(
    tabular: httpx.AsyncClient, make_settings: Callable[..., Settings]
) -> None:
    root = Path(make_settings().data_dir) / "models"
    root.mkdir(parents=True, exist_ok=True)
    (root / "corrupt.onnx").write_bytes(b"not an onnx graph")
    x, y = load_iris(return_X_y=True)
    sio.dump(LogisticRegression(max_iter=300).fit(x, y), root / "good.skops")
    await tabular.post("/v1/registry/models", json={"name": "fragile", "task": "classification"})
    for version, kind, artifact in (("1", "onnx", "corrupt.onnx"), ("2", "sklearn", "good.skops")):
        spec = {"version": version, "provider": {"type": kind, "artifact": artifact}}
        assert (
            await tabular.post("/v1/registry/models/fragile/versions", json=spec)
        ).status_code == 201
    policy = {"split": {"1": 100}, "fallback": ["2"]}
    assert (
        await tabular.put("/v1/registry/models/fragile/traffic", json=policy)
    ).status_code == 200
    body = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 4], "data": [5, 3, 1, 0]}]}
    served = await tabular.post("/v2/models/fragile/infer", json=body)
    assert served.status_code == 200 and served.headers["x-model-version"] == "2"
    pinned = await tabular.post("/v2/models/fragile/versions/1/infer", json=body)
    assert pinned.status_code == 502 and "cannot load" in pinned.json()["error"]


async def test_an_entry_point_dropped_from_the_config_stops_serving(
    make_settings: Callable[..., Settings],
) -> None:
    async with app_client(make_settings(models=[RISK])) as client:
        ok = await client.post("/v2/models/risk/infer", json=income(1000, age=[1]))
        assert ok.status_code == 200
    async with app_client(make_settings()) as client:  # the same store, the entry point gone
        refused = await client.post("/v2/models/risk/infer", json=income(1000, age=[1]))
        assert refused.status_code == 502
        assert "tests.models.entrypoints:risk is not in the config" in refused.json()["error"]
