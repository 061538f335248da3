"""Data validation at inference: a version's expectations of its input features.

Expectations are learned from the dataset a version was trained on (range of each numeric
feature, categories of a text feature, share of missing values) and stored with the version
(``metadata.expectations``). Each tabular call is checked against the version it is routed
to first; what is out of expectation is a violation, handled by the version's ``action``:
``log`` (kept in the prediction event, which monitoring reads), ``warn`` (also the
``x-meshgate-validation`` response header) or ``block`` (a 422 naming the features).

Features are named as monitoring and datasets name them: a tensor ``input`` of shape
``[rows, k]`` gives ``input[0]`` ... ``input[k-1]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

ACTIONS = ("log", "warn", "block")
MAX_REPORTED = 10


def features(inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for name, value in inputs.items():
        array = np.asarray(value)
        if array.ndim == 2 and array.shape[1] > 1:
            for j in range(array.shape[1]):
                out[f"{name}[{j}]"] = array[:, j]
        else:
            out[name] = array.reshape(-1)
    return out


def _numbers(values: np.ndarray) -> np.ndarray | None:
    if values.dtype.kind in "iufb":
        return values.astype(np.float64)
    return None


def violations(expected: Mapping[str, Any], inputs: Mapping[str, Any]) -> list[str]:
    """What in ``inputs`` is out of ``expected["features"]``; an empty list when all is well."""
    found: list[str] = []
    given = features(inputs)
    for name, rule in (expected.get("features") or {}).items():
        values = given.get(name)
        if values is None:
            if not rule.get("missing"):
                found.append(f"{name} is missing")
            continue
        numbers = _numbers(values)
        if numbers is not None and rule.get("min") is not None:
            present = numbers[~np.isnan(numbers)]
            if present.size < numbers.size and not rule.get("missing"):
                found.append(f"{name} is missing")
            if present.size and present.min() < rule["min"]:
                found.append(f"{name} below {rule['min']:g}")
            if present.size and present.max() > rule["max"]:
                found.append(f"{name} above {rule['max']:g}")
        elif rule.get("categories") is not None:
            unknown = sorted({str(v) for v in values.tolist()} - set(rule["categories"]))
            if unknown:
                found.append(f"{name} has unknown categories {', '.join(unknown[:3])}")
        if len(found) >= MAX_REPORTED:
            break
    return found[:MAX_REPORTED]
