"""A local ONNX graph on onnxruntime (CPU)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Protocol

import numpy as np

from meshgate.errors import BackendUnavailable
from meshgate.models.errors import InvalidInput
from meshgate.models.providers.base import Call, Fetch, Tensors

# A few rows run faster inline than the hop to a worker thread costs; big batches do not.
INLINE_ROWS = 64
ORT_TYPES = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
    "tensor(int64)": np.int64,
    "tensor(int32)": np.int32,
    "tensor(bool)": np.bool_,
    "tensor(string)": np.object_,
}


class OrtArg(Protocol):
    name: str
    type: str


class OrtSession(Protocol):
    """The part of ``onnxruntime.InferenceSession`` used here (onnxruntime ships no types)."""

    def get_inputs(self) -> list[OrtArg]: ...
    def get_outputs(self) -> list[OrtArg]: ...
    def run(self, output_names: list[str], feed: Tensors) -> list[np.ndarray]: ...


class OnnxModel:
    kind = "onnx"

    def __init__(self, artifact: Path, *, fetch: Fetch | None = None):
        self.artifact = artifact
        self.fetch = fetch
        """Copies a stored artifact to ``artifact`` before the first load."""
        self.session: OrtSession | None = None
        self.input_types: dict[str, type] = {}

    async def start(self) -> None:
        if self.fetch is not None:
            await self.fetch()
        self.session = await asyncio.to_thread(self._load)

    def _load(self) -> OrtSession:
        import onnxruntime as ort

        options = ort.SessionOptions()
        # Two cores serve everything: one intra-op thread keeps inference from starving I/O.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session: OrtSession = ort.InferenceSession(
            str(self.artifact), options, providers=["CPUExecutionProvider"]
        )
        self.input_types = {i.name: ORT_TYPES.get(i.type, np.float32) for i in session.get_inputs()}
        self.output_names = [o.name for o in session.get_outputs()]
        return session

    async def close(self) -> None:
        self.session = None

    async def infer(self, inputs: Tensors, call: Call) -> Tensors:
        feed: Tensors = {}
        for name, dtype in self.input_types.items():
            if name not in inputs:
                raise InvalidInput(f"missing input {name!r}", param=name)
            feed[name] = np.asarray(inputs[name], dtype=dtype)
        rows = max((len(a) for a in feed.values() if a.ndim), default=1)
        if rows <= INLINE_ROWS:
            results = self._run(feed)
        else:
            results = await asyncio.to_thread(self._run, feed)
        return dict(zip(self.output_names, results, strict=True))

    def _run(self, feed: Tensors) -> list[np.ndarray]:
        if self.session is None:
            raise BackendUnavailable("the ONNX model is not loaded")
        return self.session.run(self.output_names, feed)
