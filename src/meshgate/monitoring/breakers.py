"""The cluster's circuit breakers, folded from every node's ``meshgate.breaker.*`` reports.

A breaker lives in the process that calls the upstream (``meshgate.models.breaker_reports``
appends each of its moves to the log), so per model version the book keeps each node's last
report: which nodes have the breaker open. The breaker alert is evaluated from this book by
the holder of the alert lease, so it fires once per cluster whichever node's breaker opened,
and resolves once no node reports it open; every process applies the same reports in log
order and the book is part of monitoring's snapshot, so a restarted node shows the same.

Half-open counts as open: every call but the single trial still goes to the fallback, and a
trial may take up to the version's timeout, so dropping the report there would resolve and
fire the alert again around each trial of an upstream that stays down.

A process that stops cleanly reports ``closed`` (``stopped``) for every breaker it had open,
since its breakers end with it. A node that dies with its breaker open sends no ``closed``, so
its report lapses: an open (or half-open) report holds for the breaker's reset window plus
``alerts.breaker_grace_seconds`` after it was made. By then a live node's breaker lets a trial
through on the next call and reports again (``half_open``, then ``open`` or ``closed``), which
renews it; a dead node's report is no longer counted. A live node that gets no call at all
lets its report lapse too: with no traffic, nothing is sent to the fallback either. Reports
lapsed before a newer report of the same version are forgotten, so the book does not grow
with dead nodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from meshgate.events.catalogue import BREAKER_CLOSED, BreakerTransition
from meshgate.monitoring.alerts import iso

Key = tuple[str, str, str]
"""(tenant, model, version)"""


@dataclass(frozen=True, slots=True)
class NodeReport:
    node: str
    state: str
    """``open`` or ``half_open`` (a ``closed`` report removes the node)."""
    at: float
    reset_seconds: float

    def until(self, grace: float) -> float:
        return self.at + self.reset_seconds + grace

    def to_data(self) -> list[Any]:
        return [self.node, self.state, self.at, self.reset_seconds]


class BreakerBook:
    def __init__(self, grace_seconds: float):
        self.grace = grace_seconds
        self.reports: dict[Key, dict[str, NodeReport]] = {}

    def record(self, tenant: str, data: Any) -> None:
        """Apply one ``meshgate.breaker.*`` event's data (the tenant is the envelope's)."""
        report = BREAKER_CLOSED.parse(data)  # every breaker type has the same payload
        self.apply(tenant, report)

    def apply(self, tenant: str, report: BreakerTransition) -> None:
        key = (tenant, report.model, report.version)
        at = datetime.fromisoformat(report.at).timestamp()
        nodes = self.reports.setdefault(key, {})
        if report.state == "closed":
            nodes.pop(report.node, None)
        else:
            nodes[report.node] = NodeReport(report.node, report.state, at, report.reset_seconds)
        for node, known in list(nodes.items()):
            if known.until(self.grace) <= at:
                del nodes[node]
        if not nodes:
            del self.reports[key]

    def open_on(self, key: Key, now: float) -> list[NodeReport]:
        """The nodes whose report says the version's breaker is open now, by node."""
        nodes = self.reports.get(key, {})
        return sorted(
            (r for r in nodes.values() if now < r.until(self.grace)), key=lambda r: r.node
        )

    def open_versions(self, now: float) -> list[tuple[Key, list[NodeReport]]]:
        found = [(key, self.open_on(key, now)) for key in sorted(self.reports)]
        return [(key, nodes) for key, nodes in found if nodes]

    def summary(self, key: Key, now: float) -> dict[str, Any]:
        """What the monitoring report shows of a version's breakers."""
        nodes = self.open_on(key, now)
        return {
            "state": "open" if nodes else "closed",
            "nodes": [
                {
                    "node": r.node,
                    "state": r.state,
                    "since": iso(r.at),
                    "until": iso(r.until(self.grace)),
                }
                for r in nodes
            ],
        }

    # --- snapshots ----------------------------------------------------------------------------

    def to_data(self) -> list[Any]:
        return [
            [*key, [r.to_data() for r in nodes.values()]] for key, nodes in self.reports.items()
        ]

    def load(self, data: list[Any]) -> None:
        self.reports = {}
        for tenant, model, version, nodes in data:
            self.reports[(str(tenant), str(model), str(version))] = {
                str(node): NodeReport(str(node), str(state), float(at), float(reset))
                for node, state, at, reset in nodes
            }
