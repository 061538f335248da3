"""In-memory windows of one model version: requests, latencies, feature values, feedback.

Every process builds the same windows from the same events of the log (``monitoring.state``):
they depend only on the events and their order, never on which process applies them or when.
Updating is O(1) per value; reading (percentiles, drift) copies the windows first, so the
numeric work can run in a worker thread while events keep arriving. ``to_data`` and
``from_data`` round-trip a version exactly (the snapshot a starting process resumes from).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from meshgate.monitoring.config import AlertConfig, DriftConfig
from meshgate.monitoring.observations import Prediction


@dataclass
class FeatureWindows:
    reference: list[Any]
    current: deque[Any]


@dataclass
class VersionStats:
    tenant: str
    model: str
    version: str
    latency_window: int
    drift_config: DriftConfig
    feedback_window: int
    requests: int = 0
    errors: int = 0
    rejected: int = 0
    invalid: int = 0
    """Calls that broke the version's input expectations."""
    recent: deque[tuple[float, float | None, bool]] = field(init=False)
    features: dict[str, FeatureWindows] = field(default_factory=dict)
    feedback_reference: list[float] = field(default_factory=list)
    feedback_current: deque[float] = field(init=False)
    feedback_total: int = 0
    correct_total: float = 0.0

    def __post_init__(self) -> None:
        self.recent = deque(maxlen=self.latency_window)
        self.feedback_current = deque(maxlen=self.feedback_window)

    def record(self, prediction: Prediction, at: float) -> None:
        """One prediction made at ``at`` (the event's time, so every process agrees)."""
        self.requests += 1
        self.errors += prediction.error
        self.rejected += prediction.outcome == "client_error"
        self.invalid += prediction.invalid
        self.recent.append((at, prediction.latency_seconds, prediction.error))
        for name, values in prediction.features.items():
            windows = self.features.get(name)
            if windows is None:
                if len(self.features) >= 64:
                    continue
                windows = self.features[name] = FeatureWindows(
                    [], deque(maxlen=self.drift_config.current_size)
                )
            room = self.drift_config.reference_size - len(windows.reference)
            if room > 0:
                windows.reference.extend(values[:room])
                values = values[room:]
            windows.current.extend(values)

    def record_feedback(self, correct: float) -> None:
        self.feedback_total += 1
        self.correct_total += correct
        if len(self.feedback_reference) < self.feedback_window:
            self.feedback_reference.append(correct)
        else:
            self.feedback_current.append(correct)

    def to_data(self) -> dict[str, Any]:
        return {
            "tenant": self.tenant,
            "model": self.model,
            "version": self.version,
            "requests": self.requests,
            "errors": self.errors,
            "rejected": self.rejected,
            "invalid": self.invalid,
            "recent": list(self.recent),
            "features": {n: [w.reference, list(w.current)] for n, w in self.features.items()},
            "feedback_reference": self.feedback_reference,
            "feedback_current": list(self.feedback_current),
            "feedback_total": self.feedback_total,
            "correct_total": self.correct_total,
        }

    @classmethod
    def from_data(
        cls,
        data: dict[str, Any],
        latency_window: int,
        drift_config: DriftConfig,
        feedback_window: int,
    ) -> VersionStats:
        stats = cls(
            str(data["tenant"]),
            str(data["model"]),
            str(data["version"]),
            latency_window,
            drift_config,
            feedback_window,
            requests=int(data["requests"]),
            errors=int(data["errors"]),
            rejected=int(data["rejected"]),
            invalid=int(data.get("invalid", 0)),
            feedback_reference=[float(v) for v in data["feedback_reference"]],
            feedback_total=int(data["feedback_total"]),
            correct_total=float(data["correct_total"]),
        )
        stats.recent.extend((float(t), lat, bool(err)) for t, lat, err in data["recent"])
        stats.feedback_current.extend(float(v) for v in data["feedback_current"])
        for name, (reference, current) in data["features"].items():
            stats.features[name] = FeatureWindows(
                list(reference), deque(current, maxlen=drift_config.current_size)
            )
        return stats

    def windows(self) -> dict[str, tuple[list[Any], list[Any]]]:
        """A copy of every feature's (reference, current) windows, for drift."""
        return {n: (list(w.reference), list(w.current)) for n, w in self.features.items()}

    def window_summary(self, now: float, window_seconds: float | None = None) -> dict[str, Any]:
        """Counts, error rate and latency percentiles of the recent predictions."""
        since = None if window_seconds is None else now - window_seconds
        rows = [r for r in self.recent if since is None or r[0] >= since]
        latencies = np.array([r[1] for r in rows if r[1] is not None and not r[2]], dtype=float)
        errors = sum(r[2] for r in rows)
        pcts: dict[str, float | None] = {"p50": None, "p95": None, "p99": None}
        if latencies.size:
            p50, p95, p99 = np.percentile(latencies, [50, 95, 99])
            pcts = {"p50": p50 * 1000, "p95": p95 * 1000, "p99": p99 * 1000}
        return {
            "requests": len(rows),
            "errors": errors,
            "error_rate": errors / len(rows) if rows else 0.0,
            "latency_ms": {k: None if v is None else round(float(v), 3) for k, v in pcts.items()},
        }

    def accuracy(self, alerts: AlertConfig) -> dict[str, Any]:
        ref, cur = self.feedback_reference, self.feedback_current
        return {
            "value": self.correct_total / self.feedback_total if self.feedback_total else None,
            "feedback": self.feedback_total,
            "reference": sum(ref) / len(ref) if len(ref) >= alerts.min_feedback else None,
            "current": sum(cur) / len(cur) if len(cur) >= alerts.min_feedback else None,
        }
