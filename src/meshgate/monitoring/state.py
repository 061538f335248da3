"""Monitoring's state, built from the log: figures per model version, the cluster's circuit
breakers and the open alerts.

Every process applies the same ``meshgate.prediction.*``, ``meshgate.breaker.*`` and
``meshgate.alert.*`` records in
log order, so every process holds the same figures, whichever node served a prediction or
received its feedback. Applying depends only on the records (times are the events' own), and
a record already applied is skipped by its event id (predictions) or has no further effect
(feedback counts once per prediction; an alert is keyed by rule and version; a breaker
report replaces its node's previous one).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson

from meshgate.events.catalogue import (
    ALERT_FIRED,
    ALERT_RESOLVED,
    BREAKER_EVENTS,
    PREDICTION_FEEDBACK,
    PREDICTION_MADE,
)
from meshgate.events.envelope import Record
from meshgate.monitoring.alerts import Alert, AlertBook
from meshgate.monitoring.breakers import BreakerBook
from meshgate.monitoring.config import MonitoringConfig
from meshgate.monitoring.observations import correctness, feedback_target, prediction_of
from meshgate.monitoring.stats import VersionStats

log = logging.getLogger("meshgate.monitoring")
VersionKey = tuple[str, str, str]
REMEMBERED_PREDICTIONS = 100_000
"""Predictions remembered for their feedback; feedback on an older one is not counted."""
MADE = PREDICTION_MADE.name
FEEDBACK = PREDICTION_FEEDBACK.name
FIRED = ALERT_FIRED.name
RESOLVED = ALERT_RESOLVED.name
BREAKER = frozenset(t.name for t in BREAKER_EVENTS.values())
SNAPSHOT_FORMAT = 1


class MonitoringState:
    def __init__(self, config: MonitoringConfig):
        self.config = config
        self.versions: dict[VersionKey, VersionStats] = {}
        self.predictions: OrderedDict[str, tuple[VersionKey, Any]] = OrderedDict()
        self.alerts = AlertBook()
        self.breakers = BreakerBook(config.alerts.breaker_grace_seconds)
        self.applied = 0
        """Prediction events applied by this process (the cluster's, from the log)."""
        self.last_time = 0.0
        """Time of the newest prediction event applied (for the lag gauge)."""

    # --- applying -----------------------------------------------------------------------------

    def apply(self, records: Sequence[Record]) -> list[tuple[VersionKey, str, float | None]]:
        """Apply records in order; returns (version, outcome, latency) of each new prediction."""
        made: list[tuple[VersionKey, str, float | None]] = []
        for record in records:
            try:
                if record.type == MADE:
                    counted = self.record_prediction(record)
                    if counted is not None:
                        made.append(counted)
                elif record.type == FEEDBACK:
                    self.record_feedback(record.tenant, record.data, record.subject)
                elif record.type in BREAKER:
                    self.breakers.record(record.tenant, record.data)
                elif record.type in (FIRED, RESOLVED):
                    self.record_alert(record.type, record.data)
            except Exception:  # one malformed record must not stop the others
                log.exception("monitoring could not apply event %s", record.id)
        return made

    def record_prediction(self, record: Record) -> tuple[VersionKey, str, float | None] | None:
        prediction = prediction_of(record.tenant, record.data)
        if prediction is None or record.id in self.predictions:
            return None
        at = event_time(record.time)
        key = (record.tenant, prediction.model, prediction.version)
        stats = self.versions.get(key)
        if stats is None:
            stats = self.versions[key] = self._new_stats(key)
        stats.record(prediction, at)
        self.applied += 1
        self.last_time = max(self.last_time, at)
        self.predictions[record.id] = (key, prediction.predicted)
        if len(self.predictions) > REMEMBERED_PREDICTIONS:
            self.predictions.popitem(last=False)
        return key, prediction.outcome, prediction.latency_seconds

    def record_feedback(self, tenant: str, data: Any, subject: str | None = None) -> None:
        target = feedback_target(data, subject)
        remembered = self.predictions.get(target) if target else None
        if target is None or remembered is None or remembered[0][0] != tenant:
            return
        key, predicted = remembered
        correct = correctness(data, predicted)
        if correct is not None:
            # The first usable feedback on a prediction counts; repeats cannot skew accuracy.
            del self.predictions[target]
            self.versions[key].record_feedback(correct)

    def record_alert(self, type: str, data: Any) -> None:
        alert = Alert(**data)
        key = (alert.rule, alert.tenant, alert.model, alert.version)
        if type == FIRED:
            self.alerts.open.setdefault(key, alert)
        elif (opened := self.alerts.open.get(key)) is not None and opened.id == alert.id:
            del self.alerts.open[key]

    def _new_stats(self, key: VersionKey) -> VersionStats:
        return VersionStats(
            *key,
            self.config.latency_window,
            self.config.drift,
            self.config.alerts.feedback_window,
        )

    # --- snapshots ----------------------------------------------------------------------------

    def dump(self) -> bytes:
        """The whole state as JSON (synchronous: it is exact at the moment it is taken)."""
        return orjson.dumps(
            {
                "format": SNAPSHOT_FORMAT,
                "versions": [s.to_data() for s in self.versions.values()],
                "predictions": [[i, *key, p] for i, (key, p) in self.predictions.items()],
                "alerts": [a.to_dict() for a in self.alerts.open.values()],
                "breakers": self.breakers.to_data(),
            }
        )

    def load(self, data: dict[str, Any]) -> None:
        if data.get("format") != SNAPSHOT_FORMAT:
            raise ValueError(f"unknown monitoring snapshot format {data.get('format')!r}")
        cfg = self.config
        self.versions = {}
        for item in data["versions"]:
            stats = VersionStats.from_data(
                item, cfg.latency_window, cfg.drift, cfg.alerts.feedback_window
            )
            self.versions[(stats.tenant, stats.model, stats.version)] = stats
        self.predictions = OrderedDict(
            (str(i), ((str(t), str(m), str(v)), p)) for i, t, m, v, p in data["predictions"]
        )
        self.alerts = AlertBook()
        for item in data["alerts"]:
            self.record_alert(FIRED, item)
        self.breakers = BreakerBook(cfg.alerts.breaker_grace_seconds)
        # Snapshots written before breakers were followed have none.
        self.breakers.load(data.get("breakers", []))


def event_time(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()
