"""An MLflow model directory, zipped, registered as a version through HTTP."""

from __future__ import annotations

import io
import json
import os
import zipfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import yaml

from meshgate.config import Settings
from meshgate.models.demo import train
from tests.conftest import app_client
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
PATH = "/v1/registry/models/flowers/imports/mlflow"


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


async def test_an_import_has_its_own_body_limit_and_no_other_route_does(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    onnx, _ = train(tmp_path / "artifacts")
    limit = 256 * 1024
    settings = make_settings(max_body_bytes=4096, training={"max_import_bytes": limit})

    def archive(padding: int) -> bytes:
        # Random bytes do not compress: the archive is as large as its padding, and more.
        files = {"model.onnx": onnx.read_bytes(), "notes.bin": os.urandom(padding)}
        return mlflow_zip({"onnx": {"data": "model.onnx"}}, files)

    fits, too_large = archive(limit // 2), archive(limit)
    assert 4096 < len(fits) < limit < len(too_large)

    async def chunks(data: bytes) -> AsyncIterator[bytes]:
        for i in range(0, len(data), 16 * 1024):
            yield data[i : i + 16 * 1024]

    async with app_client(settings) as client:
        created = await client.post(
            "/v1/registry/models", json={"name": "flowers", "task": "classification"}
        )
        assert created.status_code == 201
        platform = client.app.state.services  # type: ignore[attr-defined]
        stored = "SELECT count(*) AS n FROM artifacts"
        before = (await platform.sql.fetch_one(stored))["n"]
        declared = await client.post(f"{PATH}?version=1", content=too_large, headers=ZIP)
        streamed = await client.post(f"{PATH}?version=1", content=chunks(too_large), headers=ZIP)
        after_refusals = (await platform.sql.fetch_one(stored))["n"]
        versions = (await client.get("/v1/registry/models/flowers")).json()["versions"]
        imported = await client.post(f"{PATH}?version=1", content=chunks(fits), headers=ZIP)
        # Every other route keeps max_body_bytes, a registry route of the same model too.
        big_json = {"version": "2", "provider": {"type": "onnx", "artifact": "x" * 8192}}
        other = await client.post("/v1/registry/models/flowers/versions", json=big_json)
        elsewhere = await client.post(
            "/v1/registry/models/flowers/imports/mlflow/more", content=fits, headers=ZIP
        )

    for refused in (declared, streamed):
        assert refused.status_code == 413, refused.text
        assert f"limit of {limit} bytes" in refused.json()["detail"]
    assert after_refusals == before and versions == []
    assert imported.status_code == 201, imported.text
    assert other.status_code == 413 and "limit of 4096 bytes" in other.json()["detail"]
    assert elsewhere.status_code == 413 and "limit of 4096 bytes" in elsewhere.json()["detail"]
