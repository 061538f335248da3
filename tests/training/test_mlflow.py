"""An MLflow model directory, zipped, registered as a version through HTTP."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import httpx
import yaml

from meshgate.models.demo import train
from tests.training.helpers import conforms

RUN_ID = "8a1f0c3e2b7d4c9e9f00112233445566"


def tensor(name: str, dtype: str, shape: list[int]) -> str:
    spec = {"type": "tensor", "tensor-spec": {"dtype": dtype, "shape": shape}, "name": name}
    return json.dumps([spec])


SIGNATURE = {
    "inputs": tensor("input", "float32", [-1, 4]),
    "outputs": tensor("label", "int64", [-1]),
}
ZIP = {"content-type": "application/zip"}
IMPORT = "/v1/registry/models/{name}/imports/mlflow"


def mlflow_zip(flavors: dict[str, object], files: dict[str, bytes], folder: str = "model") -> bytes:
    mlmodel = {
        "artifact_path": "model",
        "flavors": flavors,
        "mlflow_version": "2.17.0",
        "model_uuid": "f3c1",
        "run_id": RUN_ID,
        "signature": SIGNATURE,
        "utc_time_created": "2026-11-30 10:00:00.000000",
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr(f"{folder}/MLmodel", yaml.safe_dump(mlmodel))
        for name, data in files.items():
            z.writestr(f"{folder}/{name}", data)
    return out.getvalue()


async def test_onnx_and_skops_flavours_import_and_pickles_are_refused(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    onnx, skops = train(tmp_path / "artifacts")
    created = await client.post(
        "/v1/registry/models", json={"name": "flowers", "task": "classification"}
    )
    assert created.status_code == 201
    archive = mlflow_zip(
        {"onnx": {"data": "model.onnx", "onnx_version": "1.17.0"}},
        {"model.onnx": onnx.read_bytes()},
    )
    imported = await client.post(
        "/v1/registry/models/flowers/imports/mlflow?version=1", content=archive, headers=ZIP
    )
    assert imported.status_code == 201, imported.text
    await conforms(client, "post", IMPORT, 201, imported.json())
    lineage = imported.json()["metadata"]["lineage"]
    assert (
        lineage["run_id"] == RUN_ID
        and lineage["flavor"] == "onnx"
        and lineage["source"] == "mlflow"
    )
    assert imported.json()["signature"]["inputs"] == [
        {"name": "input", "datatype": "FP32", "shape": [-1, 4]}
    ]
    body = {
        "inputs": [
            {"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}
        ]
    }
    served = await client.post("/v2/models/flowers/versions/1/infer", json=body)
    assert served.status_code == 200, served.text

    skops_flavor = {"sklearn": {"pickled_model": "model.skops", "serialization_format": "skops"}}
    second = mlflow_zip(skops_flavor, {"model.skops": skops.read_bytes()}, folder="")
    imported = await client.post(
        "/v1/registry/models/flowers/imports/mlflow?version=2", content=second, headers=ZIP
    )
    assert imported.status_code == 201, imported.text
    assert imported.json()["provider"]["type"] == "sklearn"
    assert (await client.post("/v2/models/flowers/versions/2/infer", json=body)).status_code == 200

    pickled = mlflow_zip(
        {"sklearn": {"pickled_model": "model.pkl", "serialization_format": "cloudpickle"}},
        {"model.pkl": b"\x80\x04N."},
    )
    for archive_, headers, status, words in (
        (pickled, ZIP, 422, "never unpickled"),
        (b"not a zip", ZIP, 422, "zip"),
        (
            mlflow_zip({"onnx": {"data": "model.onnx"}}, {"model.onnx": b"garbage"}),
            ZIP,
            422,
            "does not load",
        ),
        (mlflow_zip({"onnx": {"data": "../../etc/passwd"}}, {}), ZIP, 422, "not in the archive"),
        (mlflow_zip({"python_function": {}}, {}), ZIP, 422, "no flavour"),
        (archive, {"content-type": "text/plain"}, 415, "zip"),
    ):
        refused = await client.post(
            "/v1/registry/models/flowers/imports/mlflow?version=3",
            content=archive_,
            headers=headers,
        )
        assert refused.status_code == status and words in refused.json()["detail"], refused.text
    again = await client.post(
        "/v1/registry/models/flowers/imports/mlflow?version=1", content=archive, headers=ZIP
    )
    assert again.status_code == 409
    missing = await client.post(
        "/v1/registry/models/nope/imports/mlflow?version=1", content=archive, headers=ZIP
    )
    assert missing.status_code == 404
    model = (await client.get("/v1/registry/models/flowers")).json()
    assert [v["version"] for v in model["versions"]] == ["1", "2"]
