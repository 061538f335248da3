"""What monitoring reads from ``meshgate.prediction.made`` and ``.feedback`` event data.

Inputs come in the shapes the model service logs: a mapping of tensor or feature name to a
value, a batch of values or a matrix of rows (one feature per column, ``name[j]``), Open
Inference Protocol tensors (``[{"name", "shape", "data"}]``, columns likewise), or a chat
message list (not features: ignored). Inputs logged only as a hash give no features, so drift
is simply not computed for that model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_FEATURES = 64
MAX_VALUES = 4096
LABEL_KEYS = ("label", "prediction", "class", "output_label")


@dataclass(frozen=True, slots=True)
class Prediction:
    tenant: str
    model: str
    version: str
    latency_seconds: float | None
    outcome: str
    """ok, client_error (the call was refused as it was asked) or server_error."""
    features: dict[str, list[Any]]
    predicted: Any
    invalid: bool = False
    """The call broke its version's input expectations (data validation)."""

    @property
    def error(self) -> bool:
        return self.outcome == "server_error"


# A tuple, not a union: isinstance checks a tuple several times faster, once per value.
_SCALARS = (int, float, str, bool)


def _scalar(value: Any) -> bool:
    return isinstance(value, _SCALARS)


def _flatten(data: Any) -> list[Any]:
    if _scalar(data):
        return [data]
    if isinstance(data, list):
        out: list[Any] = []
        for item in data:
            out.extend(_flatten(item))
            if len(out) >= MAX_VALUES:
                break
        return out[:MAX_VALUES]
    return []


def _tensor(tensor: dict[str, Any], out: dict[str, list[Any]]) -> None:
    name, data, shape = str(tensor["name"]), tensor.get("data"), tensor.get("shape")
    values = _flatten(data)
    columns = shape[-1] if isinstance(shape, list) and len(shape) >= 2 else 1
    if isinstance(columns, int) and 1 < columns <= MAX_FEATURES and len(values) % columns == 0:
        for j in range(columns):
            out[f"{name}[{j}]"] = values[j::columns]
    elif values:
        out[name] = values


def _rows(name: str, value: Any, out: dict[str, list[Any]]) -> None:
    """A matrix (list of equally long rows) gives a feature per column; else one feature."""
    if isinstance(value, list) and value and all(isinstance(r, list) for r in value):
        width = len(value[0])
        if 1 < width <= MAX_FEATURES and all(len(r) == width for r in value):
            for j in range(width):
                column = [r[j] for r in value[:MAX_VALUES] if isinstance(r[j], _SCALARS)]
                if column:
                    out[f"{name}[{j}]"] = column
            return
    values = _flatten(value)
    if values:
        out[name] = values


def features_of(inputs: Any) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    if isinstance(inputs, dict):
        for name, value in list(inputs.items())[:MAX_FEATURES]:
            _rows(str(name), value, out)
    elif isinstance(inputs, list):
        for item in inputs[:MAX_FEATURES]:
            if isinstance(item, dict) and "name" in item and "data" in item:
                _tensor(item, out)
    return dict(list(out.items())[:MAX_FEATURES])


def predicted_label(outputs: Any) -> Any:
    """The single label a classification answered, or None when there is not exactly one."""
    if isinstance(outputs, dict):
        for key, value in outputs.items():
            if key in LABEL_KEYS or str(key).endswith("label"):
                values = _flatten(value)
                return values[0] if len(values) == 1 else None
        return None
    if isinstance(outputs, list) and outputs:
        first = outputs[0]
        if isinstance(first, dict) and "data" in first:
            values = _flatten(first["data"])
            return values[0] if len(values) == 1 else None
        return first if len(outputs) == 1 and _scalar(first) else None
    return outputs if _scalar(outputs) else None


def _latency(data: dict[str, Any]) -> float | None:
    for key, scale in (("latency_ms", 0.001), ("latency_seconds", 1.0), ("latency_s", 1.0)):
        value = data.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
            return float(value) * scale
    return None


def _outcome(data: dict[str, Any]) -> str:
    """The model service says ``status``: ok, error (upstream failed) or rejected (refused)."""
    status = data.get("status")
    if isinstance(status, int) and not isinstance(status, bool):
        return "ok" if status < 400 else "client_error" if status < 500 else "server_error"
    if status in ("ok", "success") or (status is None and not data.get("error")):
        return "ok"
    return "client_error" if status == "rejected" else "server_error"


def prediction_of(tenant: str, data: Any, personal: Any = None) -> Prediction | None:
    """None when the event does not name a model and version."""
    if not isinstance(data, dict) or not data.get("model") or data.get("version") is None:
        return None
    inputs = data.get("features", data.get("inputs"))
    if inputs is None and isinstance(personal, dict):
        inputs = personal.get("features", personal.get("inputs"))
    return Prediction(
        tenant=tenant,
        model=str(data["model"]),
        version=str(data["version"]),
        latency_seconds=_latency(data),
        outcome=_outcome(data),
        features=features_of(inputs),
        predicted=predicted_label(data.get("outputs")),
        invalid=bool(data.get("violations")),
    )


def correctness(feedback: Any, predicted: Any) -> float | None:
    """1.0 or 0.0 when the true label is given and the prediction had one; else the score."""
    if not isinstance(feedback, dict):
        return None
    label = feedback.get("label")
    if label is not None and predicted is not None:
        return 1.0 if str(label) == str(predicted) else 0.0
    score = feedback.get("score")
    if isinstance(score, int | float) and not isinstance(score, bool) and 0 <= score <= 1:
        return float(score)
    return None


def feedback_target(data: Any, subject: str | None) -> str | None:
    """The prediction id a feedback event refers to."""
    if isinstance(data, dict):
        prediction_id = data.get("prediction_id")
        if isinstance(prediction_id, str):
            return prediction_id
    return subject
