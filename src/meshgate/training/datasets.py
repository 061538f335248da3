"""Training sets from the event log: a model's predictions joined with their feedback.

Point in time: a dataset has a cut-off (``until``, or the moment it was requested). Only
predictions made in ``[since, cut-off]`` and only feedback recorded at or before the cut-off
count, and the log is read up to the sequence it had when the build began, so building the
same request again gives the same rows. The latest feedback on a prediction at the cut-off is
its label (a correction replaces an earlier answer).

Left out, and counted in the manifest: predictions of users who were erased (their personal
part no longer decrypts), predictions without feedback, failed and shadow predictions, and
predictions of several rows (one feedback cannot label them).

One row per prediction: ``prediction_id``, ``predicted_at``, ``version``, one column per input
feature (named as monitoring names them, ``input[0]``), ``predicted`` (what the model
answered), ``label``, ``score`` and ``feedback_at``.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from meshgate.events.base import Filter
from meshgate.events.catalogue import PREDICTION_FEEDBACK, PREDICTION_MADE
from meshgate.events.envelope import ERASED, Event, format_time
from meshgate.events.service import EventService
from meshgate.monitoring.observations import features_of, feedback_target, predicted_label

MADE = PREDICTION_MADE.name
FEEDBACK = PREDICTION_FEEDBACK.name
PAGE = 1000
FIXED = ("prediction_id", "predicted_at", "version")
TAIL = ("predicted", "label", "score", "feedback_at")
MAX_CATEGORIES = 100
FEEDBACK_RULE = "latest feedback recorded at or before the cut-off"
Progress = Callable[[int, int], Awaitable[None]]
"""Told (sequences read, sequences to read) as the build goes."""


@dataclass(frozen=True)
class DatasetQuery:
    tenant: str
    model: str
    versions: frozenset[str] | None
    since: datetime | None
    cutoff: datetime

    def describe(self, end: int) -> dict[str, Any]:
        return {
            "model": self.model,
            "versions": sorted(self.versions) if self.versions is not None else None,
            "since": format_time(self.since) if self.since is not None else None,
            "until": format_time(self.cutoff),
            "events": [MADE, FEEDBACK],
            "log_sequence_end": end,
            "label": "feedback",
            "feedback": FEEDBACK_RULE,
            "left_out": ["erased users", "unlabeled", "failed", "shadow", "several rows"],
        }


@dataclass
class _Row:
    prediction_id: str
    sequence: int
    predicted_at: datetime
    version: str
    features: dict[str, Any]
    predicted: Any


@dataclass
class _Label:
    value: Any
    score: float | None
    at: datetime


@dataclass
class Built:
    data: bytes
    manifest: dict[str, Any]
    left_out: dict[str, int] = field(default_factory=dict)


def _single_row(inputs: Any) -> dict[str, Any] | None:
    """Feature name -> value for a one-row prediction; None for several rows."""
    found = features_of(inputs)
    if any(len(values) != 1 for values in found.values()):
        return None
    return {name: values[0] for name, values in found.items()}


async def build(events: EventService, query: DatasetQuery, progress: Progress) -> Built:
    end = await events.log.last_sequence()
    where = Filter(tenant=query.tenant, type_prefix="meshgate.prediction.")
    rows: dict[str, _Row] = {}
    labels: dict[str, _Label] = {}
    left = {"erased": 0, "unlabeled": 0, "failed": 0, "shadow": 0, "several_rows": 0}
    after = 0
    while after < end:
        page = await events.read(after=after, limit=PAGE, where=where)
        page = [e for e in page if e.sequence <= end]
        if not page:
            break
        for event in page:
            if event.type == MADE:
                _take_prediction(event, query, rows, left)
            elif event.type == FEEDBACK:
                _take_feedback(event, query, labels)
        after = page[-1].sequence
        await progress(after, end)
    await progress(end, end)
    joined = []
    for row in sorted(rows.values(), key=lambda r: r.sequence):
        label = labels.get(row.prediction_id)
        if label is None:
            left["unlabeled"] += 1
        else:
            joined.append((row, label))
    table = _table(joined)
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    data = buffer.getvalue()
    times = [r.predicted_at for r, _ in joined]
    features = [n for n in table.schema.names if n not in FIXED and n not in TAIL]
    manifest = {
        "model": query.model,
        "rows": table.num_rows,
        "time_range": {
            "first": format_time(min(times)) if times else None,
            "last": format_time(max(times)) if times else None,
        },
        "schema": [{"name": f.name, "type": str(f.type)} for f in table.schema],
        "features": features,
        "versions": sorted({r.version for r, _ in joined}),
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "format": "parquet",
        "query": query.describe(end),
        "left_out": left,
        "expectations": learn([r.features for r, _ in joined]),
    }
    return Built(data, manifest, left)


def _take_prediction(
    event: Event, query: DatasetQuery, rows: dict[str, _Row], left: dict[str, int]
) -> None:
    data = event.data if isinstance(event.data, dict) else {}
    if data.get("model") != query.model:
        return
    version = str(data.get("version"))
    if query.versions is not None and version not in query.versions:
        return
    if event.time > query.cutoff or (query.since is not None and event.time < query.since):
        return
    if event.personal == ERASED:
        left["erased"] += 1
        return
    if data.get("shadow"):
        left["shadow"] += 1
        return
    if data.get("status", "ok") != "ok":
        left["failed"] += 1
        return
    inputs = data.get("features", data.get("inputs"))
    if inputs is None and isinstance(event.personal, dict):
        inputs = event.personal.get("inputs")
    features = _single_row(inputs)
    if features is None:
        left["several_rows"] += 1
        return
    prediction_id = str(data.get("prediction_id") or event.id)
    rows[prediction_id] = _Row(
        prediction_id=prediction_id,
        sequence=event.sequence,
        predicted_at=event.time,
        version=version,
        features=features,
        predicted=predicted_label(data.get("outputs")),
    )


def _take_feedback(event: Event, query: DatasetQuery, labels: dict[str, _Label]) -> None:
    # Point in time: feedback recorded after the cut-off did not exist at the cut-off.
    if event.time > query.cutoff:
        return
    target = feedback_target(event.data, event.subject)
    data = event.data if isinstance(event.data, dict) else {}
    if target is None or (data.get("label") is None and data.get("score") is None):
        return
    score = data.get("score")
    labels[target] = _Label(
        value=data.get("label"),
        score=float(score)
        if isinstance(score, int | float) and not isinstance(score, bool)
        else None,
        at=event.time,
    )


def learn(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per input feature: the range of a numeric one, the categories of a text one (up to
    ``MAX_CATEGORIES``), and the share of rows that miss it. What inference checks a version
    trained on these rows against (``meshgate.models.expectations``)."""
    names: dict[str, None] = {}
    for row in rows:
        names.update(dict.fromkeys(row))
    learned: dict[str, dict[str, Any]] = {}
    for name in names:
        values = [row.get(name) for row in rows]
        present = [v for v in values if v is not None]
        rule: dict[str, Any] = {"missing": round(1 - len(present) / len(values), 6)}
        numbers = [v for v in present if isinstance(v, int | float) and not isinstance(v, bool)]
        if present and len(numbers) == len(present):
            rule.update(min=min(numbers), max=max(numbers))
        else:
            kinds = sorted({str(v) for v in present})
            rule["categories"] = kinds if len(kinds) <= MAX_CATEGORIES else None
        learned[name] = rule
    return learned


def _column_type(values: list[Any]) -> pa.DataType:
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
        return pa.int64()
    if present and all(isinstance(v, int | float) and not isinstance(v, bool) for v in present):
        return pa.float64()
    if present and all(isinstance(v, bool) for v in present):
        return pa.bool_()
    return pa.string()


def _column(values: list[Any]) -> pa.Array:
    kind = _column_type(values)
    if kind == pa.string():
        values = [None if v is None else v if isinstance(v, str) else str(v) for v in values]
    elif kind == pa.float64():
        values = [None if v is None else float(v) for v in values]
    return pa.array(values, type=kind)


def _table(joined: list[tuple[_Row, _Label]]) -> pa.Table:
    names: dict[str, None] = {}
    for row, _ in joined:
        for name in row.features:
            names.setdefault(name, None)
    taken = set(FIXED) | set(TAIL)
    columns: dict[str, pa.Array] = {
        "prediction_id": pa.array([r.prediction_id for r, _ in joined], type=pa.string()),
        "predicted_at": pa.array(
            [r.predicted_at for r, _ in joined], type=pa.timestamp("us", tz="UTC")
        ),
        "version": pa.array([r.version for r, _ in joined], type=pa.string()),
    }
    for name in names:
        column = f"feature.{name}" if name in taken else name
        columns[column] = _column([r.features.get(name) for r, _ in joined])
    columns["predicted"] = _column([r.predicted for r, _ in joined])
    columns["label"] = _column([lb.value for _, lb in joined])
    columns["score"] = pa.array([lb.score for _, lb in joined], type=pa.float64())
    columns["feedback_at"] = pa.array(
        [lb.at for _, lb in joined], type=pa.timestamp("us", tz="UTC")
    )
    return pa.table(columns)
