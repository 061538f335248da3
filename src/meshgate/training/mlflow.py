"""Import of an MLflow model directory (zipped) as a version, the run id kept in its lineage.

Two flavours are taken: ``onnx`` (the graph file the flavour names) and ``sklearn`` saved with
skops (``serialization_format: skops``, or a ``.skops`` file). A pickled model is refused:
an uploaded artifact is never unpickled. The archive is read in memory, entry by entry, never
extracted, and its size is bounded (the request body limit bounds it first).
"""

from __future__ import annotations

import asyncio
import io
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

import orjson
import yaml

from meshgate.errors import ValidationFailed

MAX_ENTRIES = 1000
MAX_UNPACKED = 256 * 1024 * 1024
DTYPES = {
    "float32": "FP32",
    "float64": "FP64",
    "double": "FP64",
    "float": "FP32",
    "int64": "INT64",
    "long": "INT64",
    "int32": "INT32",
    "integer": "INT32",
    "bool": "BOOL",
    "boolean": "BOOL",
}
TRUSTED_PREFIXES = ("sklearn.", "numpy.", "scipy.")


class Imported:
    def __init__(self, kind: str, data: bytes, signature: dict[str, Any], lineage: dict[str, Any]):
        self.kind = kind
        self.data = data
        self.signature = signature
        self.lineage = lineage
        self.trusted: list[str] = []


def _bad(detail: str) -> ValidationFailed:
    return ValidationFailed(f"MLflow model: {detail}", field="body")


def read(archive: bytes) -> Imported:
    """The flavour's artifact, signature and lineage out of a zipped MLflow model directory."""
    try:
        zipped = zipfile.ZipFile(io.BytesIO(archive))
    except zipfile.BadZipFile as exc:
        raise _bad("send the model directory as a zip archive") from exc
    infos = zipped.infolist()
    if len(infos) > MAX_ENTRIES or sum(i.file_size for i in infos) > MAX_UNPACKED:
        raise _bad("the archive is too large")
    # A directory zipped with its folder name puts MLmodel one level down: accept both.
    names = {PurePosixPath(i.filename): i for i in infos if not i.is_dir()}
    mlmodel = [p for p in names if p.name == "MLmodel" and len(p.parts) <= 2]
    if len(mlmodel) != 1:
        raise _bad("the archive has no MLmodel file at its top (or one folder down)")
    root = mlmodel[0].parent
    try:
        spec = yaml.safe_load(zipped.read(names[mlmodel[0]]))
    except yaml.YAMLError as exc:
        raise _bad(f"MLmodel is not YAML: {exc}") from exc
    if not isinstance(spec, dict) or not isinstance(spec.get("flavors"), dict):
        raise _bad("MLmodel has no flavors")
    flavors = spec["flavors"]

    def member(relative: object) -> bytes:
        if not isinstance(relative, str) or not relative:
            raise _bad("the flavour names no model file")
        path = root / PurePosixPath(relative)
        if ".." in PurePosixPath(relative).parts or path not in names:
            raise _bad(f"the model file {relative!r} is not in the archive")
        return zipped.read(names[path])

    lineage = {
        "source": "mlflow",
        "run_id": spec.get("run_id"),
        "model_uuid": spec.get("model_uuid"),
        "artifact_path": spec.get("artifact_path"),
        "created": str(spec["utc_time_created"]) if spec.get("utc_time_created") else None,
        "mlflow_version": spec.get("mlflow_version"),
    }
    signature = _signature(spec.get("signature"))
    if isinstance(flavors.get("onnx"), dict):
        lineage["flavor"] = "onnx"
        return Imported("onnx", member(flavors["onnx"].get("data")), signature, lineage)
    sklearn = flavors.get("sklearn")
    if isinstance(sklearn, dict):
        model_file = sklearn.get("pickled_model") or sklearn.get("data")
        skops = sklearn.get("serialization_format") == "skops" or (
            isinstance(model_file, str) and model_file.endswith(".skops")
        )
        if not skops:
            raise _bad(
                "the sklearn flavour is pickled; save it with serialization_format skops "
                "(an uploaded model is never unpickled)"
            )
        lineage["flavor"] = "sklearn"
        return Imported("sklearn", member(model_file), signature, lineage)
    raise _bad(f"no flavour Meshgate can serve (onnx, or sklearn with skops): {sorted(flavors)}")


def _signature(raw: Any) -> dict[str, Any]:
    """MLflow's tensor signature as Meshgate's; empty when it is a column (DataFrame) one."""
    if not isinstance(raw, dict):
        return {}
    out: dict[str, Any] = {}
    for side in ("inputs", "outputs"):
        try:
            specs = orjson.loads(raw[side]) if isinstance(raw.get(side), str) else []
        except orjson.JSONDecodeError:
            return {}
        tensors = []
        for n, item in enumerate(specs):
            tensor = item.get("tensor-spec") if isinstance(item, dict) else None
            if item.get("type") != "tensor" or not isinstance(tensor, dict):
                return {}
            datatype = DTYPES.get(str(tensor.get("dtype")))
            if datatype is None:
                return {}
            name = item.get("name") or ("input" if side == "inputs" else f"output_{n}")
            tensors.append({"name": name, "datatype": datatype, "shape": tensor.get("shape", [-1])})
        out[side] = tensors
    return out


async def check_loads(imported: Imported) -> None:
    """The artifact must load the way a version loads it; refused with the reason if not."""
    await asyncio.to_thread(_check, imported)


def _check(imported: Imported) -> None:
    with tempfile.TemporaryDirectory(prefix="mlflow-import-") as tmp:
        path = Path(tmp) / ("model.onnx" if imported.kind == "onnx" else "model.skops")
        path.write_bytes(imported.data)
        try:
            if imported.kind == "onnx":
                import onnxruntime

                onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
                return
            import skops.io as sio

            untrusted = sorted(sio.get_untrusted_types(file=path))
        except Exception as exc:  # each runtime raises its own kinds on a bad file
            raise _bad(f"the {imported.kind} model does not load: {exc}") from exc
        if refused := [t for t in untrusted if not t.startswith(TRUSTED_PREFIXES)]:
            raise _bad(f"the skops file would build types that are not trusted: {refused}")
        imported.trusted = untrusted
