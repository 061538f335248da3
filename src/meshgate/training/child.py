"""The training process: ``python -m meshgate.training.child WORKDIR``.

It limits itself first (address space and CPU time, ``resource.setrlimit``), then reads
``WORKDIR/request.json`` and the dataset, splits the holdout, calls the trainer on the rest,
evaluates on the holdout, and writes the artifact (skops or ONNX, never a pickle) and
``WORKDIR/result.json``. The trainer's own code runs only here, never in the server.

The production version is measured on the same holdout rows from what it answered when they
were served (the dataset's ``predicted`` column): that needs nothing of its provider, so any
model, local or remote, can be the baseline.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import json
import os
import resource
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any

MiB = 1024 * 1024


def limit(memory_mb: int, cpu_seconds: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb * MiB, memory_mb * MiB))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 5))


def resolve(entrypoint: str) -> Any:
    module_name, _, function = entrypoint.partition(":")
    return getattr(importlib.import_module(module_name), function)


def classification_metrics(model: Any, x: Any, y: Any) -> dict[str, float | None]:
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    predicted = model.predict(x)
    out: dict[str, float | None] = {
        "accuracy": float(accuracy_score(y, predicted)),
        "f1": float(f1_score(y, predicted, average="macro")),
        "auc": None,
    }
    if hasattr(model, "predict_proba"):
        try:
            proba = model.predict_proba(x)
            classes = list(getattr(model, "classes_", []))
            if proba.shape[1] == 2:
                out["auc"] = float(roc_auc_score(y, proba[:, 1]))
            else:
                out["auc"] = float(
                    roc_auc_score(y, proba, multi_class="ovr", labels=classes or None)
                )
        except ValueError:  # a class missing from the holdout: AUC is undefined
            out["auc"] = None
    return out


def regression_metrics(predicted: Any, y: Any) -> dict[str, float | None]:
    import numpy as np

    errors = np.asarray(predicted, dtype=np.float64) - np.asarray(y, dtype=np.float64)
    return {"mae": float(np.mean(np.abs(errors))), "rmse": float(np.sqrt(np.mean(errors**2)))}


def baseline_metrics(task: str, predicted: list[Any], labels: list[Any]) -> dict[str, Any]:
    """What the production version scored on the holdout rows it served."""
    pairs = [(p, y) for p, y in zip(predicted, labels, strict=True) if p is not None]
    if not pairs:
        return {"rows": 0}
    if task == "regression":
        return {
            "rows": len(pairs),
            **regression_metrics([p for p, _ in pairs], [y for _, y in pairs]),
        }
    from sklearn.metrics import accuracy_score, f1_score

    got = [str(p) for p, _ in pairs]
    want = [str(y) for _, y in pairs]
    return {
        "rows": len(pairs),
        "accuracy": float(accuracy_score(want, got)),
        "f1": float(f1_score(want, got, average="macro")),
    }


def save(model: Any, fmt: str, features: int, workdir: Path) -> tuple[str, list[str]]:
    """The artifact's file name and the skops types it needs trusted."""
    if fmt == "onnx":
        from skl2onnx import to_onnx
        from skl2onnx.common.data_types import FloatTensorType

        options = {id(model): {"zipmap": False}} if hasattr(model, "predict_proba") else None
        graph = to_onnx(
            model,
            initial_types=[("input", FloatTensorType([None, features]))],
            options=options,
            target_opset=17,
        )
        (workdir / "model.onnx").write_bytes(graph.SerializeToString())
        return "model.onnx", []
    import skops.io as sio

    path = workdir / "model.skops"
    sio.dump(model, path)
    return path.name, sorted(sio.get_untrusted_types(file=path))


def run(workdir: Path) -> dict[str, Any]:
    request = json.loads((workdir / "request.json").read_text())
    import numpy as np
    import pyarrow.parquet as pq

    table = pq.read_table(workdir / "dataset.parquet")
    features: list[str] = request["features"]
    task: str = request["task"]
    for name in features:
        kind = str(table.schema.field(name).type)
        if kind not in ("double", "int64", "float", "bool"):
            return {"ok": False, "reason": f"feature {name!r} is {kind}, not numeric"}
    columns = [table.column(n).to_numpy(zero_copy_only=False) for n in features]
    x = np.column_stack([np.asarray(c, dtype=np.float64) for c in columns]) if columns else None
    labels = table.column("label").to_pylist()
    keep = [i for i, v in enumerate(labels) if v is not None]
    if x is None or len(keep) < 4:
        return {"ok": False, "reason": f"the dataset has {len(keep)} labelled rows; 4 at least"}
    x = x[keep]
    y = np.asarray([labels[i] for i in keep])
    if task == "regression":
        y = y.astype(np.float64)
    from sklearn.model_selection import train_test_split

    index = np.arange(len(y))
    stratify = None
    if task == "classification":
        _, counts = np.unique(y, return_counts=True)
        holdout_n = max(1, round(len(y) * request["holdout"]))
        if counts.min() >= 2 and holdout_n >= len(counts):
            stratify = y
    train_i, hold_i = train_test_split(
        index, test_size=request["holdout"], random_state=request["seed"], stratify=stratify
    )
    trainer = resolve(request["entrypoint"])
    source = inspect.getsourcefile(trainer)
    model = trainer(x[train_i], y[train_i], dict(request["params"]))
    if model is None or not hasattr(model, "predict"):
        return {"ok": False, "reason": "the trainer returned no estimator (nothing with predict)"}
    if task == "regression":
        metrics = regression_metrics(model.predict(x[hold_i]), y[hold_i])
    else:
        metrics = classification_metrics(model, x[hold_i], y[hold_i])
    versions = table.column("version").to_pylist()
    predicted = table.column("predicted").to_pylist()
    production = request.get("production")
    served = [keep[i] for i in hold_i if versions[keep[i]] == production]
    baseline = baseline_metrics(task, [predicted[i] for i in served], [labels[i] for i in served])
    artifact, trusted = save(model, request["format"], len(features), workdir)
    return {
        "ok": True,
        "metrics": metrics,
        "baseline": {"version": production, **baseline},
        "rows": {"train": len(train_i), "holdout": len(hold_i)},
        "artifact": artifact,
        "trusted": trusted,
        "source_sha256": hashlib.sha256(Path(source).read_bytes()).hexdigest() if source else None,
    }


def die_with_parent() -> None:
    """End this process when the server that started it is gone (killed, not stopped)."""
    parent = os.getppid()

    def watch() -> None:
        while True:
            time.sleep(0.5)
            if os.getppid() != parent:
                os._exit(3)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def main() -> int:
    die_with_parent()
    workdir = Path(sys.argv[1])
    limits = json.loads((workdir / "limits.json").read_text())
    limit(limits["memory_mb"], limits["cpu_seconds"])
    try:
        result = run(workdir)
    except MemoryError:
        result = {"ok": False, "reason": f"ran out of memory (limit {limits['memory_mb']} MiB)"}
    except Exception as exc:
        where = traceback.extract_tb(exc.__traceback__)[-1]
        result = {
            "ok": False,
            "reason": f"training raised {type(exc).__name__}: {exc}"[:1000],
            "at": f"{Path(where.filename).name}:{where.lineno}",
        }
    (workdir / "result.json").write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
