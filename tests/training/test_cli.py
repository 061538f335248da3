"""The loop over a real server: ``meshgate datasets build`` and ``meshgate models train``, and a
training job that outlives a node killed while it ran."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest

from tests.conftest import ADMIN_KEY, Server
from tests.training.test_training import iris_shifted

# Two servers start, and two training processes run, on a shared machine.
pytestmark = pytest.mark.timeout(900)


def meshgate(server: Server, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESHGATE_")}
    env.update({"MESHGATE_URL": server.url, "MESHGATE_API_KEY": ADMIN_KEY, "COLUMNS": "200"})
    return subprocess.run(
        [sys.executable, "-m", "meshgate", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def job_state(
    http: httpx.Client, job_id: str, until: Callable[[dict[str, object]], bool]
) -> dict[str, object]:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        state = http.get(f"/v1/jobs/{job_id}").json()
        if until(state):
            return dict(state)
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} never got there: {state}")


def test_cli_builds_and_trains_and_a_job_survives_its_node(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    env = {"MESHGATE_DEMO": "true", "MESHGATE_TRAINING__LEASE_SECONDS": "2"}
    first = start_server(env=env)
    rows, labels = iris_shifted()
    with first.client() as http:
        for row, label in zip(rows[:40], labels[:40], strict=True):
            body = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": row}]}
            served = http.post("/v2/models/iris/infer", json=body)
            assert served.status_code == 200, served.text
            prediction = served.headers["x-prediction-id"]
            assert (
                http.post(
                    f"/v1/predictions/{prediction}/feedback", json={"label": label}
                ).status_code
                == 201
            )

    out = tmp_path / "iris.parquet"
    built = meshgate(
        first, tmp_path, "datasets", "build", "--model", "iris", "-o", str(out), "--json"
    )
    assert built.returncode == 0, built.stderr
    manifest = json.loads(built.stdout)
    assert manifest["status"] == "succeeded" and manifest["rows"] == 40
    assert hashlib.sha256(out.read_bytes()).hexdigest() == manifest["sha256"]
    assert pq.read_table(out).num_rows == 40
    shown = json.loads(meshgate(first, tmp_path, "datasets", "show", manifest["id"]).stdout)
    assert shown["sha256"] == manifest["sha256"]

    # An MLflow model directory, registered through the CLI.
    model_dir = tmp_path / "mlflow-model"
    model_dir.mkdir()
    (model_dir / "model.onnx").write_bytes(
        (first.log.parent / "models" / "iris-1.onnx").read_bytes()
    )
    mlmodel = {"flavors": {"onnx": {"data": "model.onnx"}}, "run_id": "run-42"}
    (model_dir / "MLmodel").write_text(json.dumps(mlmodel))  # JSON is YAML
    imported = meshgate(
        first, tmp_path, "models", "import-mlflow", "iris", str(model_dir), "--version", "m1"
    )
    assert imported.returncode == 0, imported.stderr
    assert "registered iris version m1 (MLflow run run-42)" in imported.stdout

    # A training queued through the CLI; its node dies while the training process runs.
    queued = meshgate(
        first, tmp_path, "models", "train", "iris", "--dataset", manifest["id"],
        "--param", "C=0.5", "--no-wait", "--json",
    )  # fmt: skip
    assert queued.returncode == 0, queued.stderr
    job_id = json.loads(queued.stdout)["id"]
    with first.client() as http:
        job_state(http, job_id, lambda s: s["status"] == "running")
    first.proc.kill()
    first.proc.wait()
    second = start_server(env=env, data_dir=first.log.parent)
    with second.client() as http:
        done = job_state(http, job_id, lambda s: s["status"] in ("succeeded", "failed"))
        versions = [v["version"] for v in http.get("/v1/registry/models/iris").json()["versions"]]
    assert done["status"] == "succeeded", done
    assert done["attempts"] == 2 and done["result"]["parameters"] == {"C": 0.5}
    assert sorted(versions) == ["1", "2", "3", "m1"]
