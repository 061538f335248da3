"""Demo models for ``make run``: an iris classifier in two versions (ONNX and skops), split
90/10 sticky by user, and a chat model when ``MESHGATE_DEMO_CHAT_URL`` names an upstream.

Training takes milliseconds and happens once; later starts reuse the files in ``data_dir``.
The artifacts the registry names are in the shared artifact store, by content: every node
trains the same bytes, so nodes starting together (or one after another) on one database
declare identical versions and find each other's artifacts.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
import zipfile
from pathlib import Path
from typing import Any

from meshgate.config import Settings
from meshgate.models.artifacts import ArtifactStore
from meshgate.models.config import ModelDeclaration

FEATURES = 4
SIGNATURE: dict[str, Any] = {
    "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, FEATURES]}],
    "outputs": [
        {"name": "label", "datatype": "INT64", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP32", "shape": [-1, 3]},
    ],
}


def artifact_dir(settings: Settings) -> Path:
    # Absolute: the registry keeps the path, and relative artifacts are read from this folder.
    return Path(settings.data_dir).resolve() / "models"


def artifact_paths(directory: Path) -> tuple[Path, Path]:
    return directory / "iris-1.onnx", directory / "iris-2.skops"


def train(directory: Path) -> tuple[Path, Path]:
    """iris-1.onnx (logistic regression) and iris-2.skops (a differently regularised one)."""
    onnx_path, skops_path = artifact_paths(directory)
    if onnx_path.exists() and skops_path.exists():
        return onnx_path, skops_path
    import skops.io as sio
    from skl2onnx import to_onnx
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    directory.mkdir(parents=True, exist_ok=True)
    x, y = load_iris(return_X_y=True)
    first = LogisticRegression(max_iter=500).fit(x, y)
    graph = to_onnx(
        first,
        initial_types=[("input", FloatTensorType([None, FEATURES]))],
        options={"zipmap": False},
        target_opset=17,
    )
    tmp = onnx_path.with_suffix(".tmp")
    tmp.write_bytes(graph.SerializeToString())
    tmp.replace(onnx_path)
    second = LogisticRegression(max_iter=500, C=0.3).fit(x, y)
    sio.dump(second, skops_path)
    return onnx_path, skops_path


def stable_skops(data: bytes) -> bytes:
    """The same skops file, byte for byte on every node: skops names objects by their memory
    address (``__id__`` and ``<id>.npy``) and stamps zip entries with the clock; ids are
    renumbered in order of appearance and entries dated 1980."""
    with zipfile.ZipFile(io.BytesIO(data)) as src:
        entries = {name: src.read(name) for name in src.namelist()}
    schema = entries.pop("schema.json").decode()
    ids: dict[str, str] = {}
    for found in re.finditer(r'"__id__": (\d+)|"(\d+)\.npy"', schema):
        ids.setdefault(found.group(1) or found.group(2), str(len(ids) + 1))
    schema = re.sub(r'("__id__": )(\d+)', lambda m: m.group(1) + ids[m.group(2)], schema)
    schema = re.sub(r'"(\d+)\.npy"', lambda m: f'"{ids[m.group(1)]}.npy"', schema)
    renamed = {"schema.json": schema.encode()}
    for name, content in entries.items():
        renamed[f"{ids[name.removesuffix('.npy')]}.npy"] = content
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in sorted(renamed):
            dst.writestr(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), renamed[name])
    return out.getvalue()


def trained_bytes(directory: Path) -> tuple[bytes, bytes]:
    onnx_path, skops_path = train(directory)
    return onnx_path.read_bytes(), stable_skops(skops_path.read_bytes())


async def declarations(settings: Settings, artifacts: ArtifactStore) -> list[ModelDeclaration]:
    onnx_bytes, skops_bytes = await asyncio.to_thread(trained_bytes, artifact_dir(settings))
    onnx_path, skops_path = await artifacts.put(onnx_bytes), await artifacts.put(skops_bytes)
    found = [
        ModelDeclaration.model_validate(
            {
                "name": "iris",
                "task": "classification",
                "description": "Iris species from four flower measurements (demo).",
                "intended_purpose": "Demonstration of the V2 routes, the router and monitoring.",
                "risk_level": "minimal",
                "versions": [
                    {
                        "version": "1",
                        "provider": {"type": "onnx", "artifact": onnx_path},
                        "signature": SIGNATURE,
                        "metadata": {"trained_on": "sklearn.datasets.load_iris"},
                    },
                    {
                        "version": "2",
                        "provider": {"type": "sklearn", "artifact": skops_path},
                        "signature": SIGNATURE,
                        "metadata": {"trained_on": "sklearn.datasets.load_iris", "C": 0.3},
                    },
                ],
                "aliases": {"production": "1", "canary": "2"},
                "traffic": {"split": {"1": 90, "2": 10}, "sticky": "user", "fallback": ["1"]},
                "trainer": {
                    "entrypoint": "meshgate.training.demo:train_iris",
                    "params": {"C": 1.0},
                    "timeout_seconds": 300,
                    "validation": "warn",
                    "promote": {
                        "metric": "accuracy",
                        "margin": 0.02,
                        "rollout": {
                            "mode": "canary",
                            "steps": [10, 50, 100],
                            "interval_seconds": 30,
                            "min_requests": 50,
                        },
                    },
                },
            }
        )
    ]
    if settings.demo_chat_url:
        # A version per upstream URL: versions are immutable, the URL may change between runs.
        version = "url-" + hashlib.sha256(settings.demo_chat_url.encode()).hexdigest()[:8]
        found.append(
            ModelDeclaration.model_validate(
                {
                    "name": "demo-chat",
                    "task": "chat",
                    "description": "Chat on the upstream named by MESHGATE_DEMO_CHAT_URL.",
                    "intended_purpose": "Demonstration of the OpenAI-compatible routes.",
                    "risk_level": "limited",
                    "context_policy": {"allow": ["preferences.language", "interactions.last:5"]},
                    "versions": [
                        {
                            "version": version,
                            "provider": {"type": "openai", "base_url": settings.demo_chat_url},
                        }
                    ],
                    "traffic": {"split": {version: 100}, "sticky": "none"},
                }
            )
        )
    return found
