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

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from meshgate.events.base import Filter
from meshgate.events.catalogue import PREDICTION_FEEDBACK, PREDICTION_MADE
from meshgate.events.envelope import ERASED, Event, format_time
from meshgate.events.service import EventService
from meshgate.monitoring.observations import features_of, feedback_target, predicted_label
from meshgate.training.spill import FIXED, TAIL, Label, Learner, Prediction, Spill, micros, write

MADE = PREDICTION_MADE.name
FEEDBACK = PREDICTION_FEEDBACK.name
PAGE = 1000
ROW_GROUP_ROWS = 10_000
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
class Built:
    path: Path
    """The Parquet file, in the folder the build was given."""
    manifest: dict[str, Any]
    left_out: dict[str, int] = field(default_factory=dict)


def _single_row(inputs: Any) -> dict[str, Any] | None:
    """Feature name -> value for a one-row prediction; None for several rows."""
    found = features_of(inputs)
    if any(len(values) != 1 for values in found.values()):
        return None
    return {name: values[0] for name, values in found.items()}


async def build(
    events: EventService,
    query: DatasetQuery,
    progress: Progress,
    folder: Path,
    row_group_rows: int = ROW_GROUP_ROWS,
) -> Built:
    """Read the log up to its present end into a spill in ``folder``, then write the joined
    rows to ``folder/dataset.parquet`` a row group at a time (see :mod:`.spill`)."""
    end = await events.log.last_sequence()
    where = Filter(tenant=query.tenant, type_prefix="meshgate.prediction.")
    left = {"erased": 0, "unlabeled": 0, "failed": 0, "shadow": 0, "several_rows": 0}
    spill = await asyncio.to_thread(Spill, folder / "spill.sqlite")
    try:
        after = 0
        while after < end:
            page = await events.read(after=after, limit=PAGE, where=where)
            page = [e for e in page if e.sequence <= end]
            if not page:
                break
            predictions: list[Prediction] = []
            labels: list[Label] = []
            for event in page:
                if event.type == MADE and (row := _prediction(event, query, left)):
                    predictions.append(row)
                elif event.type == FEEDBACK and (label := _feedback(event, query)):
                    labels.append(label)
            await asyncio.to_thread(spill.add, predictions, labels)
            after = page[-1].sequence
            await progress(after, end)
        await progress(end, end)
        left["unlabeled"] = await asyncio.to_thread(spill.unlabeled)
        path = folder / "dataset.parquet"
        written = await asyncio.to_thread(write, spill, path, row_group_rows)
    finally:
        await asyncio.to_thread(spill.close)
    schema = written.schema
    manifest = {
        "model": query.model,
        "rows": written.rows,
        "time_range": {
            "first": format_time(written.first) if written.first is not None else None,
            "last": format_time(written.last) if written.last is not None else None,
        },
        "schema": [{"name": f.name, "type": str(f.type)} for f in schema],
        "features": [n for n in schema.names if n not in FIXED and n not in TAIL],
        "versions": written.versions,
        "sha256": written.sha256,
        "size": written.size,
        "format": "parquet",
        "query": query.describe(end),
        "left_out": left,
        "expectations": written.expectations,
    }
    return Built(path, manifest, left)


def _prediction(event: Event, query: DatasetQuery, left: dict[str, int]) -> Prediction | None:
    data = event.data if isinstance(event.data, dict) else {}
    if data.get("model") != query.model:
        return None
    version = str(data.get("version"))
    if query.versions is not None and version not in query.versions:
        return None
    if event.time > query.cutoff or (query.since is not None and event.time < query.since):
        return None
    if event.personal == ERASED:
        left["erased"] += 1
        return None
    if data.get("shadow"):
        left["shadow"] += 1
        return None
    if data.get("status", "ok") != "ok":
        left["failed"] += 1
        return None
    inputs = data.get("features", data.get("inputs"))
    if inputs is None and isinstance(event.personal, dict):
        inputs = event.personal.get("inputs")
    features = _single_row(inputs)
    if features is None:
        left["several_rows"] += 1
        return None
    return (
        str(data.get("prediction_id") or event.id),
        event.sequence,
        micros(event.time),
        version,
        orjson.dumps(features),
        orjson.dumps(predicted_label(data.get("outputs"))),
    )


def _feedback(event: Event, query: DatasetQuery) -> Label | None:
    # Point in time: feedback recorded after the cut-off did not exist at the cut-off.
    if event.time > query.cutoff:
        return None
    target = feedback_target(event.data, event.subject)
    data = event.data if isinstance(event.data, dict) else {}
    if target is None or (data.get("label") is None and data.get("score") is None):
        return None
    score = data.get("score")
    return (
        target,
        orjson.dumps(data.get("label")),
        float(score) if isinstance(score, int | float) and not isinstance(score, bool) else None,
        micros(event.time),
    )


def learn(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per input feature: the range of a numeric one, the categories of a text one (up to
    ``MAX_CATEGORIES``), and the share of rows that miss it. What inference checks a version
    trained on these rows against (``meshgate.models.expectations``)."""
    learner = Learner()
    for row in rows:
        learner.add(row)
    return learner.learned()
