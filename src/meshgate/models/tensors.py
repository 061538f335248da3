"""Open Inference Protocol (KServe V2) tensors: JSON and binary encoding, signature checks.

Triton's clients send tensors as raw bytes after the JSON header by default (the binary tensor
extension, announced by ``Inference-Header-Content-Length``), so both encodings are read and
written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from meshgate.models.config import Signature, TensorSpec
from meshgate.models.errors import InvalidInput
from meshgate.strictjson import parse_json

DTYPES: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(np.object_),
}
DATATYPE_OF = {dtype: name for name, dtype in DTYPES.items()}
HEADER_LENGTH = "inference-header-content-length"


@dataclass
class InferRequest:
    inputs: dict[str, np.ndarray]
    datatypes: dict[str, str]
    request_id: str | None = None
    outputs: list[str] | None = None
    binary_outputs: set[str] = field(default_factory=set)
    binary_default: bool = False


def parse_request(body: bytes, header_length: int | None) -> InferRequest:
    """Decode an infer request; every malformed part is named in the error."""
    head = body if header_length is None else body[:header_length]
    binary = memoryview(body)[header_length:] if header_length is not None else memoryview(b"")
    doc = parse_json(head)
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list):
        raise InvalidInput("the body must be a JSON object with an 'inputs' list")
    request = InferRequest({}, {}, request_id=_str_or_none(doc.get("id")))
    offset = 0
    for spec in doc["inputs"]:
        name, array, used = _decode_input(spec, binary, offset)
        if name in request.inputs:
            raise InvalidInput(f"input {name!r} is given twice")
        request.inputs[name] = array
        request.datatypes[name] = spec["datatype"]
        offset += used
    params = doc.get("parameters") or {}
    request.binary_default = bool(isinstance(params, dict) and params.get("binary_data_output"))
    if isinstance(doc.get("outputs"), list):
        request.outputs = []
        for out in doc["outputs"]:
            if not isinstance(out, dict) or not isinstance(out.get("name"), str):
                raise InvalidInput("each requested output needs a 'name'")
            request.outputs.append(out["name"])
            if (out.get("parameters") or {}).get("binary_data"):
                request.binary_outputs.add(out["name"])
    return request


def _decode_input(spec: Any, binary: memoryview, offset: int) -> tuple[str, np.ndarray, int]:
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise InvalidInput("each input needs a 'name'")
    name = spec["name"]
    datatype, shape = spec.get("datatype"), spec.get("shape")
    if datatype not in DTYPES:
        raise InvalidInput(f"input {name!r}: unknown datatype {datatype!r}")
    if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise InvalidInput(f"input {name!r}: 'shape' must be a list of non-negative integers")
    dtype = DTYPES[datatype]
    size = math.prod(shape)
    params = spec.get("parameters") or {}
    length = params.get("binary_data_size") if isinstance(params, dict) else None
    if length is not None:
        if datatype == "BYTES":
            raise InvalidInput(f"input {name!r}: binary BYTES tensors are not supported")
        if not isinstance(length, int) or offset + length > len(binary):
            raise InvalidInput(f"input {name!r}: binary_data_size runs past the body")
        if length != size * dtype.itemsize:
            raise InvalidInput(f"input {name!r}: {length} bytes do not fit shape {shape}")
        array = np.frombuffer(binary[offset : offset + length], dtype=dtype).reshape(shape)
        return name, array, length
    data = spec.get("data")
    if not isinstance(data, list):
        raise InvalidInput(f"input {name!r}: 'data' must be a list")
    try:
        array = np.asarray(data, dtype=dtype)
        if array.size != size:
            raise ValueError(f"{array.size} values for shape {shape}")
        array = array.reshape(shape)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidInput(f"input {name!r}: data does not fit {datatype} {shape}: {exc}") from exc
    return name, array, 0


def validate(request: InferRequest, signature: Signature, *, required: bool = True) -> None:
    """Inputs must match the signature's names, datatypes and shapes (-1: any size)."""
    if not signature.inputs:
        return
    known = {t.name: t for t in signature.inputs}
    for name in request.inputs:
        if name not in known:
            raise InvalidInput(
                f"unknown input {name!r}; this version takes {', '.join(sorted(known))}",
                param=name,
            )
    for spec in signature.inputs:
        if spec.name not in request.inputs:
            if required and spec.from_context is None:
                raise InvalidInput(f"missing input {spec.name!r}", param=spec.name)
            continue
        check(spec, request.datatypes.get(spec.name), request.inputs[spec.name].shape)


def check(spec: TensorSpec, datatype: str | None, shape: tuple[int, ...]) -> None:
    if datatype is not None and datatype != spec.datatype:
        raise InvalidInput(
            f"input {spec.name!r}: datatype {datatype}, expected {spec.datatype}", param=spec.name
        )
    fits = len(shape) == len(spec.shape) and all(
        want in (-1, got) for want, got in zip(spec.shape, shape, strict=True)
    )
    if not fits:
        raise InvalidInput(
            f"input {spec.name!r}: shape {list(shape)}, expected {spec.shape}", param=spec.name
        )


def datatype_of(array: np.ndarray) -> str:
    if array.dtype.kind in "USO":
        return "BYTES"
    return DATATYPE_OF.get(array.dtype, "FP64")


def encode_response(
    model: str,
    version: str,
    request_id: str,
    outputs: dict[str, np.ndarray],
    binary: set[str],
) -> tuple[bytes, int | None]:
    """(body, JSON header length when binary tensors follow it)."""
    docs, blobs = [], []
    for name, array in outputs.items():
        doc: dict[str, Any] = {
            "name": name,
            "datatype": datatype_of(array),
            "shape": list(array.shape),
        }
        if name in binary and doc["datatype"] != "BYTES":
            raw = np.ascontiguousarray(array).tobytes()
            doc["parameters"] = {"binary_data_size": len(raw)}
            blobs.append(raw)
        else:
            flat = array.reshape(-1)
            doc["data"] = [str(x) for x in flat] if doc["datatype"] == "BYTES" else flat.tolist()
        docs.append(doc)
    head = orjson.dumps(
        {"model_name": model, "model_version": version, "id": request_id, "outputs": docs}
    )
    if not blobs:
        return head, None
    return head + b"".join(blobs), len(head)


def encode_request(inputs: dict[str, np.ndarray]) -> bytes:
    """A JSON V2 infer request (used towards V2 upstreams)."""
    return orjson.dumps(
        {
            "inputs": [
                {
                    "name": name,
                    "datatype": datatype_of(array),
                    "shape": list(array.shape),
                    "data": array.reshape(-1).tolist(),
                }
                for name, array in inputs.items()
            ]
        }
    )


def decode_response(body: bytes) -> dict[str, np.ndarray]:
    """The outputs of a JSON V2 infer response."""
    doc = orjson.loads(body)
    outputs = {}
    for out in doc.get("outputs") or ():
        dtype = DTYPES.get(out.get("datatype"), np.dtype(np.float64))
        outputs[out["name"]] = np.asarray(out.get("data", []), dtype=dtype).reshape(out["shape"])
    return outputs


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
