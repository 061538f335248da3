"""``platform.monitoring``: model versions watched through their events in the durable log.

Every process follows the log (:class:`meshgate.events.follow.LogFollower`) and applies each
``meshgate.prediction.*``, ``meshgate.breaker.*`` and ``meshgate.alert.*`` event to the same
in-memory state (``monitoring.state``), so every node reports the same figures, whichever node
served a prediction, received its feedback or saw its breaker open. A starting process loads
the newest snapshot of that state from the SQL store and follows the log after it; the holder
of the ``monitoring.alerts`` lease writes the snapshot every ``snapshot_seconds`` (and when it
stops), so start-up reads at most that much of the log. Nothing here runs on a client's request.

Alert rules are evaluated only by the holder of the lease, and only once its state has caught
up with the log: firing and resolving publish ``meshgate.alert.fired`` / ``.resolved`` (which
every process applies to its book of open alerts, so a new holder after a handover or restart
knows what is open and fires nothing twice) and call the configured webhooks. The breaker
rule reads the breakers every node reported to the log (``monitoring.breakers``), never this
process's own.

Prometheus: ``meshgate_predictions`` and ``meshgate_prediction_latency_seconds`` count the
cluster's prediction events this process applied from the log since it started (every node
reports the cluster; read one node, never a sum over nodes); the per-node request counters
are ``meshgate_http_requests`` and ``meshgate_model_requests``. ``meshgate_alerts_firing`` is
the cluster's, on every node; ``meshgate_model_accuracy`` and ``meshgate_model_drift_share``
are set by the node evaluating the rules. ``meshgate_breaker_state`` stays each process's own
breakers (the alert does not read it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Histogram

from meshgate.core.health import Readiness
from meshgate.errors import NotFound
from meshgate.events.base import Filter
from meshgate.events.catalogue import ALERT_FIRED, ALERT_RESOLVED, AlertPayload, EventType
from meshgate.events.follow import LogFollower
from meshgate.events.leases import Leases, holder_name
from meshgate.monitoring.alerts import Alert, AlertBook, breaker_violation, version_violations
from meshgate.monitoring.config import MonitoringConfig, thresholds_for
from meshgate.monitoring.drift import model_drift
from meshgate.monitoring.metrics import Metrics
from meshgate.monitoring.slo_store import SloLedger
from meshgate.monitoring.snapshots import SnapshotStore
from meshgate.monitoring.state import MonitoringState, VersionKey
from meshgate.monitoring.stats import VersionStats
from meshgate.monitoring.webhooks import AlertWebhooks

if TYPE_CHECKING:
    from meshgate.events.envelope import Record
    from meshgate.events.service import EventService

log = logging.getLogger("meshgate.monitoring")
PROBE_TIMEOUT = 2.0
ALERT_LEASE = "monitoring.alerts"
SNAPSHOT = "monitoring"
MIN_LEASE_SECONDS = 10.0
CATCH_UP_SECONDS = 2.0
WATCHED = Filter(type_prefix="meshgate.")
"""Prediction, breaker and alert events; the follower skips the rest without decrypting."""


class MonitoringService:
    def __init__(
        self,
        config: MonitoringConfig,
        metrics: Metrics,
        *,
        events: EventService,
        readiness: Readiness,
        leases: Leases,
        snapshots: SnapshotStore,
        slo: SloLedger,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        self.config = config
        self.metrics = metrics
        self.events = events
        self.readiness = readiness
        self.leases = leases
        self.snapshots = snapshots
        self.slo = slo
        self.holder = holder_name()
        self.clock = clock
        self.sleep = sleep
        self.state = MonitoringState(config)
        self.follower = LogFollower(events.tap, self.apply, name="monitoring", where=WATCHED)
        self.webhooks = AlertWebhooks(config.alerts)
        self._children: dict[tuple[VersionKey, str], tuple[Counter, Histogram]] = {}
        self._drift_cache: dict[VersionKey, tuple[int, dict[str, Any] | None]] = {}
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._snapshot_at = 0.0
        self._leader = False
        self._rules: set[str] = set()
        self.resumed_from = 0
        """Sequence of the snapshot this process started from (0: the whole log)."""
        self._start_end = 0
        """The log's last sequence when this process started: until the state has reached it,
        its figures are partial (a node with no snapshot reads the whole log first)."""
        self.evaluations = 0

    @property
    def alerts(self) -> AlertBook:
        return self.state.alerts

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        after = 0
        try:
            found = await self.snapshots.load(SNAPSHOT)
            if found is not None and await self._log_was_reset(found[0]):
                log.warning("monitoring: the event log is behind the snapshot; rebuilding")
                await self.snapshots.delete(SNAPSHOT)
                found = None
            if found is not None:
                self.state.load(found[1])
                after = found[0]
        except Exception:
            # Without it the whole log is read: slower, never wrong.
            log.exception("monitoring: could not load the snapshot; reading the log from the start")
            self.state = MonitoringState(self.config)
        self.resumed_from = after
        with contextlib.suppress(Exception):  # the log is down: nothing to wait for yet
            self._start_end = await self.events.log.last_sequence()
        self.follower.start(after)
        await self.slo.start()
        self._task = asyncio.create_task(self._evaluate_forever(), name="monitoring-alerts")

    async def _log_was_reset(self, sequence: int) -> bool:
        """A snapshot past the end of the log belongs to an earlier log (a stream dropped
        and created again): following after it would skip every new event."""
        try:
            return await self.events.log.last_sequence() < sequence
        except Exception:  # the log is down: it comes back where it was
            return False

    async def close(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        await self.follower.close()
        await self.slo.close()
        # Every process holds the same state, so any may save it: the next start reads less.
        with contextlib.suppress(Exception):
            await self.save_snapshot()
        with contextlib.suppress(Exception):  # another node takes over at once
            await self.leases.release(ALERT_LEASE, self.holder)
        await self.webhooks.close()

    async def save_snapshot(self) -> None:
        # Serialized off the event loop (a large state takes a while), with nothing applied
        # meanwhile so it is exactly the state at ``position``.
        async with self.follower.paused() as position:
            state = await asyncio.to_thread(self.state.dump)
        await self.snapshots.save(SNAPSHOT, position, state)
        self._snapshot_at = time.monotonic()

    # --- feeding ------------------------------------------------------------------------------

    def apply(self, records: Sequence[Record]) -> None:
        """The follower's callback: every process applies every record, in log order."""
        for key, outcome, latency in self.state.apply(records):
            self._count(key, outcome, latency)
        if self.state.last_time:
            lag = max(0.0, time.time() - self.state.last_time)
            self.metrics.event_lag.labels("monitoring").set(lag)

    def _count(self, key: VersionKey, result: str, latency: float | None) -> None:
        children = self._children.get((key, result))
        if children is None:
            children = self._children[(key, result)] = (
                self.metrics.predictions.labels(*key, result),
                self.metrics.prediction_latency.labels(*key),
            )
        children[0].inc()
        if latency is not None and result == "ok":
            children[1].observe(latency)

    # --- reading ------------------------------------------------------------------------------

    @property
    def complete(self) -> bool:
        """Whether the state holds every event the log had when this process started."""
        return self.follower.position >= self._start_end

    async def model_report(self, tenant: str, name: str) -> dict[str, Any]:
        """Per version: requests, error rate, latency percentiles, accuracy, drift, alerts."""
        versions = sorted(
            (s for (t, m, _), s in self.state.versions.items() if t == tenant and m == name),
            key=lambda s: (len(s.version), s.version),
        )
        if not versions:
            raise NotFound(f"no predictions of model '{name}' have been recorded")
        now = self.clock()
        open_alerts = self.alerts.for_model(tenant, name)
        # Every figure is read before the first await, with the drift windows: events applied
        # meanwhile cannot make one part of the report newer than another.
        out = []
        for stats in versions:
            recent = stats.window_summary(now)
            out.append(
                {
                    "version": stats.version,
                    "requests": stats.requests,
                    "errors": stats.errors,
                    "rejected": stats.rejected,
                    "invalid_inputs": stats.invalid,
                    "error_rate": stats.errors / stats.requests if stats.requests else 0.0,
                    "latency_ms": recent["latency_ms"],
                    "latency_sample": recent["requests"],
                    "accuracy": stats.accuracy(self.config.alerts),
                    "drift": None,
                    "breaker": self.state.breakers.summary((tenant, name, stats.version), now),
                    "alerts": [a.to_dict() for a in open_alerts if a.version == stats.version],
                }
            )
        drifts = await self._drifts([((tenant, name, s.version), s) for s in versions])
        for item, drift in zip(out, drifts, strict=True):
            item["drift"] = drift
        return {
            "model": name,
            "complete": self.complete,
            "versions": out,
            "alerts": [a.to_dict() for a in open_alerts],
        }

    async def _drifts(
        self, items: list[tuple[VersionKey, VersionStats]]
    ) -> list[dict[str, Any] | None]:
        """Drift of each version as of this call, recomputed (in a worker thread) only for
        versions that saw new values since it was last computed."""
        known: list[dict[str, Any] | None] = []
        stale: list[tuple[int, VersionKey, dict[str, tuple[list[Any], list[Any]]], int]] = []
        for key, stats in items:
            cached = self._drift_cache.get(key, (-1, None))
            known.append(cached[1])
            if stats.features and cached[0] != stats.requests:
                stale.append((len(known) - 1, key, stats.windows(), stats.requests))
        if stale:
            cfg = self.config.drift
            fresh = await asyncio.to_thread(lambda: [model_drift(w, cfg) for *_, w, _ in stale])
            for (index, key, _, seen), drift in zip(stale, fresh, strict=True):
                known[index] = drift
                if seen >= self._drift_cache.get(key, (-1, None))[0]:
                    self._drift_cache[key] = (seen, drift)
        return known

    # --- alerts -------------------------------------------------------------------------------

    async def evaluate(self) -> tuple[list[Alert], list[Alert]]:
        """Run every rule once; publish and deliver what fired and what resolved."""
        cfg = self.config.alerts
        now = self.clock()
        items = list(self.state.versions.items())
        drifts = await self._drifts(items)
        violations = []
        for (key, stats), drift in zip(items, drifts, strict=True):
            window = stats.window_summary(now, cfg.window_seconds)
            accuracy = stats.accuracy(cfg)
            shown = accuracy["current"] if accuracy["current"] is not None else accuracy["value"]
            if shown is not None:
                self.metrics.accuracy.labels(*key).set(shown)
            if drift is not None:
                self.metrics.drift_share.labels(*key).set(drift["share"])
            violations += version_violations(
                *key, window, accuracy, drift, thresholds_for(cfg, key[1])
            )
        if cfg.breaker_open:
            # The cluster's breakers, from every node's reports in the log.
            violations += [
                breaker_violation(*key, len(nodes))
                for key, nodes in self.state.breakers.open_versions(now)
            ]
        book = self.state.alerts
        fired, resolved = book.reconcile(violations, now)
        announced: tuple[list[Alert], list[Alert]] = ([], [])
        for alert in fired:
            if await self._announce(ALERT_FIRED, alert):
                announced[0].append(alert)
            else:  # not in the log: forgotten, so the next round fires it again
                book.open.pop(alert_key(alert), None)
        for alert in resolved:
            if await self._announce(ALERT_RESOLVED, alert):
                announced[1].append(alert)
            else:
                alert.resolved_at = None
                book.open[alert_key(alert)] = alert
        self.refresh_alert_gauge()
        self.evaluations += 1
        return announced

    def refresh_alert_gauge(self) -> None:
        firing = self.state.alerts.firing_by_rule()
        self._rules.update(firing)
        for rule in self._rules:
            self.metrics.alerts_firing.labels(rule).set(firing.get(rule, 0))

    async def _announce(self, type_: EventType[AlertPayload], alert: Alert) -> bool:
        """Append the alert's event, then deliver it to the webhooks; False when the log
        refused it (nothing is delivered then: every delivery has its event)."""
        subject = f"{alert.model}/{alert.version}"
        try:
            event = await self.events.publish(
                type_.name,
                tenant=alert.tenant,
                subject=subject,
                data=type_.data(AlertPayload(**alert.to_dict())),
            )
        except Exception:
            log.exception(
                "could not publish %s for %s; trying again next round", type_.name, subject
            )
            return False
        log.warning("%s: %s", type_.name, alert.message, extra={"alert": alert.to_dict()})
        self.webhooks.send(event.id, event.to_cloudevent())
        return True

    async def _lead_round(self, lease_seconds: float) -> None:
        # A node still reading the log it found at start leaves the lease to one that has read
        # it: holding it would hold every alert of the cluster until this node caught up.
        if not self.complete:
            if self._leader:
                await self.leases.release(ALERT_LEASE, self.holder)
                self._leader = False
            return
        # One evaluator per cluster, so an alert fires (and is delivered) once.
        self._leader = await self.leases.acquire(ALERT_LEASE, self.holder, lease_seconds)
        if not self._leader:
            return
        # Only on state that has every event appended so far (alerts fired by the previous
        # holder included): evaluating a stale book could fire an open alert again.
        if not await self.follower.caught_up(CATCH_UP_SECONDS):
            log.warning("monitoring is behind the log; alert evaluation waits a round")
            return
        await self.evaluate()
        if time.monotonic() - self._snapshot_at >= self.config.snapshot_seconds:
            await self.save_snapshot()

    async def probe_backends(self) -> None:
        """Keep ``meshgate_backend_up`` current even when nobody polls /readyz."""
        for name, check in list(self.readiness.checks.items()):
            up = 1
            try:
                # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow the cancellation
                # that close() sends, and the loop would never end.
                async with asyncio.timeout(PROBE_TIMEOUT):
                    await check()
            except Exception:  # any failure means down; /readyz says why
                up = 0
            self.metrics.backend_up.labels(name).set(up)

    async def _evaluate_forever(self) -> None:
        interval = self.config.alerts.interval_seconds
        # Long enough that a slow round does not hand the lease over; a node that stops
        # releases it, one that dies loses it after this long.
        lease_seconds = max(3 * interval, MIN_LEASE_SECONDS)
        while not self._closing:
            await self.sleep(interval)
            try:
                await self._lead_round(lease_seconds)
            except Exception:
                log.exception("alert evaluation failed")
            self.refresh_alert_gauge()
            try:
                await self.probe_backends()
            except Exception:
                log.exception("probing the backends failed")


def alert_key(alert: Alert) -> tuple[str, str, str, str]:
    return (alert.rule, alert.tenant, alert.model, alert.version)
