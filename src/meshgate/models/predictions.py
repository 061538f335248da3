"""``meshgate.prediction.made`` and ``meshgate.prediction.feedback`` events.

What a prediction event keeps follows the model's logging policy: inputs in full, as a
SHA-256 hash, or not at all; the hash is always there so identical inputs can be matched.
With a known user, the user and session ids, and the text of a chat (messages and reply), go
into the event's personal part, encrypted with that user's key and shredded with it. Tabular
features stay in the plain part, where drift monitoring reads them.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import secrets
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from meshgate.events.catalogue import (
    PREDICTION_FEEDBACK,
    PREDICTION_MADE,
    Cost,
    PredictionFeedback,
    PredictionMade,
    PredictionStatus,
    TokenUsage,
)
from meshgate.events.ports import EventPublisher
from meshgate.models.config import LoggingPolicy

TEXT_TASKS = ("chat", "embedding")


# A random per-process prefix and a counter: unique across processes without a system call
# per prediction (reading the OS's randomness costs tens of microseconds on some machines).
_PREFIX = "pred_" + secrets.token_hex(8)
_COUNTER = itertools.count(1)


def _new_prefix() -> None:
    global _PREFIX
    _PREFIX = "pred_" + secrets.token_hex(8)


os.register_at_fork(after_in_child=_new_prefix)


def new_prediction_id() -> str:
    return f"{_PREFIX}{next(_COUNTER):08x}"


def digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def jsonable(tensors: dict[str, np.ndarray]) -> dict[str, Any]:
    return {name: array.tolist() for name, array in tensors.items()}


@dataclass(slots=True)
class Prediction:
    prediction_id: str
    tenant: str
    model: str
    version: str
    task: str
    logging: LoggingPolicy
    inputs_hash: str
    inputs: Any
    outputs: Any
    latency_ms: float
    trace_id: str | None
    user_id: str | None
    session_id: str | None = None
    context_fields: list[str] = field(default_factory=list)
    shadow: bool = False
    status: PredictionStatus = "ok"
    error: str | None = None
    fallback_from: str | None = None
    tokens: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    key_id: str | None = None
    """The API key that made the call (the audit trail's actor)."""


def event_parts(p: Prediction) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(data, personal) of the event for one prediction."""
    data: dict[str, Any] = {
        "prediction_id": p.prediction_id,
        "tenant": p.tenant,
        "model": p.model,
        "version": p.version,
        "task": p.task,
        "status": p.status,
        "shadow": p.shadow,
        "latency_ms": round(p.latency_ms, 3),
        "trace_id": p.trace_id,
        "context_fields": p.context_fields,
        "inputs_hash": p.inputs_hash,
    }
    for key, value in (
        ("key_id", p.key_id),
        ("error", p.error),
        ("fallback_from", p.fallback_from),
    ):
        if value is not None:
            data[key] = value
    if p.tokens is not None:
        data["tokens"] = p.tokens
    data.update(p.extra)
    kept: dict[str, Any] = {}
    if p.logging.inputs == "full" and p.inputs is not None:
        kept["inputs"] = p.inputs
    if p.logging.outputs == "full" and p.outputs is not None:
        kept["outputs"] = p.outputs
    personal: dict[str, Any] | None = None
    if p.user_id is not None:
        personal = {"user_id": p.user_id, "session_id": p.session_id}
    elif p.session_id is not None:
        data["session_id"] = p.session_id
    if p.task in TEXT_TASKS and personal is not None:
        personal.update(kept)
        return made_data(data), personal
    if p.task in TEXT_TASKS:
        # Without a user there is no key to encrypt with: keep only what is not the text.
        kept.pop("inputs", None)
        if isinstance(kept.get("outputs"), str):
            kept["outputs"] = {"characters": len(kept["outputs"])}
    data.update(kept)
    return made_data(data), personal


_MADE_FIELDS = tuple(PredictionMade.model_fields)
_MADE_KNOWN = frozenset(_MADE_FIELDS)
_PLAIN = (str, int, float, bool, type(None))
# The objects that are payload models of their own: their fields, in order.
_MODELS = {"usage": tuple(TokenUsage.model_fields), "cost": tuple(Cost.model_fields)}
_FLOATS = frozenset({"latency_ms", "cache_similarity"})


def made_data(data: dict[str, Any]) -> dict[str, Any]:
    """``PREDICTION_MADE.data(PredictionMade(**data))`` without building the model on every
    call: the same keys in the payload's order, lists and objects copied as the model would.
    Anything this does not recognise as what the model keeps unchanged (a field the payload
    does not declare, a nested value that is not flat) goes through the model, which refuses
    or converts it as before."""
    out: dict[str, Any] = {}
    for key in _MADE_FIELDS:
        if key not in data:
            continue
        value = data[key]
        if key in _FLOATS and type(value) is not float:
            return PREDICTION_MADE.data(PREDICTION_MADE.payload(**data))  # the model converts
        if not isinstance(value, _PLAIN):
            value = _flat_copy(key, value)
            if value is None:
                return PREDICTION_MADE.data(PREDICTION_MADE.payload(**data))
        out[key] = value
    if len(out) != len(data):
        return PREDICTION_MADE.data(PREDICTION_MADE.payload(**data))
    return out


def _flat_copy(key: str, value: Any) -> Any:
    if type(value) is list and all(isinstance(v, _PLAIN) for v in value):
        return list(value)
    if type(value) is not dict or not all(isinstance(v, _PLAIN) for v in value.values()):
        return None
    fields = _MODELS.get(key)
    if fields is not None and tuple(value) != fields[: len(value)]:
        return None  # not in the model's order, or not its fields
    if key == "cost" and type(value.get("amount")) is not float:
        return None  # the model makes it a float
    return dict(value)


async def publish_prediction(events: EventPublisher, p: Prediction) -> None:
    data, personal = event_parts(p)
    await events.publish(
        PREDICTION_MADE.name,
        tenant=p.tenant,
        data=data,
        subject=f"models/{p.model}",
        personal=personal,
        user_id=p.user_id,
        id=p.prediction_id,
    )


async def publish_feedback(
    events: EventPublisher, *, tenant: str, prediction_id: str, feedback: dict[str, Any]
) -> str:
    event_id = "fb_" + secrets.token_hex(12)
    payload = PredictionFeedback(prediction_id=prediction_id, **feedback)
    await events.publish(
        PREDICTION_FEEDBACK.name,
        tenant=tenant,
        data=PREDICTION_FEEDBACK.data(payload),
        subject=f"predictions/{prediction_id}",
        id=event_id,
    )
    return event_id
