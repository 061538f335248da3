"""``platform.monitoring``: model versions watched through their prediction events.

``meshgate.prediction.made`` events feed each version's windows (requests, errors, latency,
input features); ``meshgate.prediction.feedback`` events score the prediction they name. A
background task evaluates the alert rules every ``alerts.interval_seconds``; firing and
resolving publish ``meshgate.alert.fired`` / ``meshgate.alert.resolved`` and call the
configured webhooks. Nothing here runs on a client's request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from prometheus_client import Counter, Gauge, Histogram

from meshgate.core.health import Readiness
from meshgate.errors import NotFound
from meshgate.events.leases import Leases, holder_name
from meshgate.monitoring.alerts import Alert, AlertBook, breaker_violation, iso, version_violations
from meshgate.monitoring.config import MonitoringConfig, thresholds_for
from meshgate.monitoring.drift import model_drift
from meshgate.monitoring.metrics import Metrics
from meshgate.monitoring.observations import (
    correctness,
    feedback_target,
    prediction_of,
)
from meshgate.monitoring.stats import VersionStats
from meshgate.monitoring.webhooks import AlertWebhooks

if TYPE_CHECKING:
    from meshgate.events.envelope import Event
    from meshgate.events.service import EventService

log = logging.getLogger("meshgate.monitoring")
VersionKey = tuple[str, str, str]
REMEMBERED_PREDICTIONS = 100_000
PROBE_TIMEOUT = 2.0
ALERT_LEASE = "monitoring.alerts"
MIN_LEASE_SECONDS = 10.0


class MonitoringService:
    def __init__(
        self,
        config: MonitoringConfig,
        metrics: Metrics,
        *,
        events: EventService,
        readiness: Readiness,
        leases: Leases,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ):
        self.config = config
        self.metrics = metrics
        self.events = events
        self.readiness = readiness
        self.leases = leases
        self.holder = holder_name()
        self.clock = clock
        self.sleep = sleep
        self.alerts = AlertBook()
        self.webhooks = AlertWebhooks(config.alerts)
        self._versions: dict[VersionKey, VersionStats] = {}
        self._predictions: OrderedDict[str, tuple[VersionKey, Any]] = OrderedDict()
        self._children: dict[tuple[VersionKey, str], tuple[Counter, Histogram]] = {}
        self._lag: tuple[Gauge, Gauge] | None = None
        self._drift_cache: dict[VersionKey, tuple[int, dict[str, Any] | None]] = {}
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self.evaluations = 0

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        self.events.on("meshgate.prediction.", self.handle)
        self._task = asyncio.create_task(self._evaluate_forever(), name="monitoring-alerts")

    async def close(self) -> None:
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        with contextlib.suppress(Exception):  # another node takes over at once
            await self.leases.release(ALERT_LEASE, self.holder)
        await self.webhooks.close()

    # --- feeding ------------------------------------------------------------------------------

    async def handle(self, event: Event) -> None:
        lag = time.time() - event.time.timestamp()
        gauge = self.metrics.event_lag
        if self._lag is None or self._lag[0] is not gauge:
            self._lag = (gauge, gauge.labels("monitoring"))
        self._lag[1].set(max(0.0, lag))
        if event.type == "meshgate.prediction.made":
            self.record_prediction(event.tenant, event.id, event.data, event.personal)
        elif event.type == "meshgate.prediction.feedback":
            self.record_feedback(event.tenant, event.data, event.subject)

    def record_prediction(
        self, tenant: str, prediction_id: str, data: Any, personal: Any = None
    ) -> None:
        prediction = prediction_of(tenant, data, personal)
        if prediction is None:
            return
        key = (tenant, prediction.model, prediction.version)
        stats = self._versions.get(key)
        if stats is None:
            stats = self._versions[key] = VersionStats(
                tenant,
                prediction.model,
                prediction.version,
                self.config.latency_window,
                self.config.drift,
                self.config.alerts.feedback_window,
            )
        stats.record(prediction, self.clock())
        self._count(key, prediction.outcome, prediction.latency_seconds)
        self._predictions[prediction_id] = (key, prediction.predicted)
        if len(self._predictions) > REMEMBERED_PREDICTIONS:
            self._predictions.popitem(last=False)

    def record_feedback(self, tenant: str, data: Any, subject: str | None = None) -> None:
        target = feedback_target(data, subject)
        remembered = self._predictions.get(target) if target else None
        if target is None or remembered is None or remembered[0][0] != tenant:
            return
        key, predicted = remembered
        correct = correctness(data, predicted)
        if correct is not None:
            # The first usable feedback on a prediction counts; repeats cannot skew accuracy.
            del self._predictions[target]
            self._versions[key].record_feedback(correct)

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

    async def model_report(self, tenant: str, name: str) -> dict[str, Any]:
        """Per version: requests, error rate, latency percentiles, accuracy, drift, alerts."""
        versions = sorted(
            (s for (t, m, _), s in self._versions.items() if t == tenant and m == name),
            key=lambda s: (len(s.version), s.version),
        )
        if not versions:
            raise NotFound(f"no predictions of model '{name}' have been recorded")
        drifts = await self._drifts([((tenant, name, s.version), s) for s in versions])
        now = self.clock()
        open_alerts = self.alerts.for_model(tenant, name)
        out = []
        for stats, drift in zip(versions, drifts, strict=True):
            recent = stats.window_summary(now)
            out.append(
                {
                    "version": stats.version,
                    "requests": stats.requests,
                    "errors": stats.errors,
                    "rejected": stats.rejected,
                    "error_rate": stats.errors / stats.requests if stats.requests else 0.0,
                    "latency_ms": recent["latency_ms"],
                    "latency_sample": recent["requests"],
                    "accuracy": stats.accuracy(self.config.alerts),
                    "drift": drift,
                    "alerts": [a.to_dict() for a in open_alerts if a.version == stats.version],
                }
            )
        return {"model": name, "versions": out, "alerts": [a.to_dict() for a in open_alerts]}

    async def _drifts(
        self, items: list[tuple[VersionKey, VersionStats]]
    ) -> list[dict[str, Any] | None]:
        """Drift of each version, recomputed (in a worker thread) only when it saw new values."""
        stale = [
            (key, stats.windows(), stats.requests)
            for key, stats in items
            if stats.features and self._drift_cache.get(key, (-1, None))[0] != stats.requests
        ]
        if stale:
            cfg = self.config.drift
            fresh = await asyncio.to_thread(lambda: [model_drift(w, cfg) for _, w, _ in stale])
            for (key, _, seen), drift in zip(stale, fresh, strict=True):
                self._drift_cache[key] = (seen, drift)
        return [self._drift_cache.get(key, (0, None))[1] for key, _ in items]

    # --- alerts -------------------------------------------------------------------------------

    async def evaluate(self) -> tuple[list[Alert], list[Alert]]:
        """Run every rule once; publish and deliver what fired and what resolved."""
        cfg = self.config.alerts
        now = self.clock()
        items = list(self._versions.items())
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
            violations += [breaker_violation(*k) for k in self.metrics.open_breakers()]
        fired, resolved = self.alerts.reconcile(violations, now)
        firing = self.alerts.firing_by_rule()
        for rule in {*firing, *(a.rule for a in resolved)}:
            self.metrics.alerts_firing.labels(rule).set(firing.get(rule, 0))
        for alert in fired:
            await self._announce("meshgate.alert.fired", alert)
        for alert in resolved:
            await self._announce("meshgate.alert.resolved", alert)
        self.evaluations += 1
        return fired, resolved

    async def _announce(self, type: str, alert: Alert) -> None:
        log.warning("%s: %s", type, alert.message, extra={"alert": alert.to_dict()})
        subject = f"{alert.model}/{alert.version}"
        cloudevent: dict[str, Any] | None = None
        event_id = str(uuid.uuid4())
        try:
            event = await self.events.publish(
                type, tenant=alert.tenant, subject=subject, data=alert.to_dict()
            )
            event_id, cloudevent = event.id, event.to_cloudevent()
        except Exception:
            log.exception("could not publish %s for %s", type, subject)
        if cloudevent is None:
            cloudevent = {
                "specversion": "1.0",
                "id": event_id,
                "source": "/meshgate",
                "type": type,
                "subject": subject,
                "time": iso(self.clock()),
                "datacontenttype": "application/json",
                "data": alert.to_dict(),
            }
        self.webhooks.send(event_id, cloudevent)

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
                # One evaluator per cluster, so an alert fires (and is delivered) once.
                if await self.leases.acquire(ALERT_LEASE, self.holder, lease_seconds):
                    await self.evaluate()
            except Exception:
                log.exception("alert evaluation failed")
            try:
                await self.probe_backends()
            except Exception:
                log.exception("probing the backends failed")
