"""A scikit-learn estimator saved with skops: loaded without pickle, after a trusted-types check.

``skops.io.get_untrusted_types`` lists every type the file would build that skops does not
trust by default; the file loads only when each of them is in the version's ``trusted`` list.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np

from meshgate.errors import BadRequest
from meshgate.models.config import Signature
from meshgate.models.providers.base import Call, Fetch, Tensors

INLINE_ROWS = 64


class UntrustedArtifact(BadRequest):
    pass


def check_trusted(path: Path, trusted: list[str]) -> list[str]:
    """The file's untrusted types, once each is in ``trusted``; raises otherwise."""
    import skops.io as sio

    try:
        untrusted = sio.get_untrusted_types(file=path)
    except Exception as exc:  # skops raises several kinds on a file that is not its format
        raise UntrustedArtifact(f"{path.name} is not a readable skops file: {exc}") from exc
    if refused := sorted(set(untrusted) - set(trusted)):
        raise UntrustedArtifact(
            f"{path.name} would build types that are not trusted: {', '.join(refused)}; "
            "list them under provider.trusted if you trust them"
        )
    return list(untrusted)


def load_trusted(path: Path, trusted: list[str]) -> Any:
    import skops.io as sio

    return sio.load(path, trusted=check_trusted(path, trusted))


def features(inputs: Tensors, signature: Signature) -> np.ndarray:
    """The estimator's X: the signature's inputs side by side, in declared order."""
    names = [t.name for t in signature.inputs] or sorted(inputs)
    columns = [np.asarray(inputs[n], dtype=np.float64) for n in names]
    columns = [c.reshape(len(c), -1) if c.ndim else c.reshape(1, 1) for c in columns]
    return columns[0] if len(columns) == 1 else np.hstack(columns)


class SklearnModel:
    kind = "sklearn"

    def __init__(
        self,
        artifact: Path,
        trusted: list[str],
        signature: Signature,
        *,
        fetch: Fetch | None = None,
    ):
        self.artifact = artifact
        self.fetch = fetch
        """Copies a stored artifact to ``artifact`` before the first load."""
        self.trusted = trusted
        self.signature = signature
        self.estimator: Any = None

    async def start(self) -> None:
        if self.fetch is not None:
            await self.fetch()
        self.estimator = await asyncio.to_thread(load_trusted, self.artifact, self.trusted)

    async def close(self) -> None:
        self.estimator = None

    async def infer(self, inputs: Tensors, call: Call) -> Tensors:
        x = features(inputs, self.signature)
        if len(x) <= INLINE_ROWS:
            return self._predict(x)
        return await asyncio.to_thread(self._predict, x)

    def _predict(self, x: np.ndarray) -> Tensors:
        out = {"label": np.asarray(self.estimator.predict(x))}
        if hasattr(self.estimator, "predict_proba"):
            out["probabilities"] = np.asarray(self.estimator.predict_proba(x), dtype=np.float32)
        return out
