"""Alert rules and the book of open alerts.

A rule looks at one model version's current figures and says whether it is violated, with
the value and threshold that tell why. The book compares each evaluation with the alerts
already open: a new violation fires an alert, a violation gone resolves it. An alert is
identified by rule, tenant, model and version, so it fires once and stays open until resolved.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from meshgate.monitoring.config import AlertConfig

Key = tuple[str, str, str, str]
"""(rule, tenant, model, version)"""


@dataclass(frozen=True, slots=True)
class Violation:
    rule: str
    tenant: str
    model: str
    version: str
    value: float
    threshold: float
    message: str

    @property
    def key(self) -> Key:
        return (self.rule, self.tenant, self.model, self.version)


@dataclass(slots=True)
class Alert:
    id: str
    rule: str
    tenant: str
    model: str
    version: str
    value: float
    threshold: float
    message: str
    fired_at: str
    resolved_at: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def iso(timestamp: float) -> str:
    return (
        datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


def version_violations(
    tenant: str,
    model: str,
    version: str,
    window: dict[str, Any],
    accuracy: dict[str, Any],
    drift: dict[str, Any] | None,
    cfg: AlertConfig,
) -> list[Violation]:
    """Every rule this model version breaks now."""
    found: list[Violation] = []

    def add(rule: str, value: float, threshold: float, message: str) -> None:
        found.append(Violation(rule, tenant, model, version, value, threshold, message))

    if window["requests"] >= cfg.min_requests:
        if window["error_rate"] >= cfg.error_rate:
            add(
                "error_rate",
                window["error_rate"],
                cfg.error_rate,
                f"{model} {version}: error rate {window['error_rate']:.2%} "
                f"over the last {window['requests']} requests",
            )
        p95 = window["latency_ms"]["p95"]
        if p95 is not None and p95 > cfg.p95_latency_ms:
            add(
                "p95_latency",
                p95,
                cfg.p95_latency_ms,
                f"{model} {version}: p95 latency {p95:.0f} ms above {cfg.p95_latency_ms:.0f} ms",
            )
    reference, current = accuracy["reference"], accuracy["current"]
    if reference is not None and current is not None and reference - current >= cfg.accuracy_drop:
        add(
            "accuracy_drop",
            current,
            reference - cfg.accuracy_drop,
            f"{model} {version}: accuracy fell from {reference:.1%} to {current:.1%}",
        )
    if cfg.drift and drift is not None and drift["drifted"]:
        names = sorted(n for n, f in drift["features"].items() if f["drifted"])
        add(
            "drift",
            drift["share"],
            drift["threshold"],
            f"{model} {version}: input drift in {', '.join(names)}",
        )
    return found


def breaker_violation(tenant: str, model: str, version: str, nodes: int) -> Violation:
    """The breaker is open on ``nodes`` nodes (the value; at least one fires)."""
    where = "one node" if nodes == 1 else f"{nodes} nodes"
    return Violation(
        "breaker_open", tenant, model, version, float(nodes), 1.0,
        f"{model} {version}: circuit breaker open on {where}, traffic goes to the fallback",
    )  # fmt: skip


class AlertBook:
    def __init__(self) -> None:
        self.open: dict[Key, Alert] = {}

    def reconcile(
        self, violations: list[Violation], now: float, *, evaluated: set[Key] | None = None
    ) -> tuple[list[Alert], list[Alert]]:
        """(fired, resolved) by this evaluation; ``evaluated`` limits what may resolve."""
        current = {v.key: v for v in violations}
        fired: list[Alert] = []
        for key, v in current.items():
            alert = self.open.get(key)
            if alert is None:
                alert = Alert(
                    id=str(uuid.uuid4()),
                    rule=v.rule,
                    tenant=v.tenant,
                    model=v.model,
                    version=v.version,
                    value=v.value,
                    threshold=v.threshold,
                    message=v.message,
                    fired_at=iso(now),
                )
                self.open[key] = alert
                fired.append(alert)
            # An open alert keeps the figures it fired with: every node shows the same alert.
        resolved: list[Alert] = []
        for key in list(self.open):
            if key not in current and (evaluated is None or key in evaluated):
                alert = self.open.pop(key)
                alert.resolved_at = iso(now)
                resolved.append(alert)
        return fired, resolved

    def for_model(self, tenant: str, model: str) -> list[Alert]:
        return [a for a in self.open.values() if a.tenant == tenant and a.model == model]

    def firing_by_rule(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for alert in self.open.values():
            counts[alert.rule] = counts.get(alert.rule, 0) + 1
        return counts
