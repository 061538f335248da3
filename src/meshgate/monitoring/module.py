"""The monitoring's parts, built for the composition root."""

from __future__ import annotations

from fastapi import APIRouter

from meshgate.config import Settings
from meshgate.core.health import Readiness
from meshgate.events.leases import Leases, holder_name
from meshgate.events.service import EventService
from meshgate.monitoring.metrics import Metrics
from meshgate.monitoring.routes import router
from meshgate.monitoring.service import MonitoringService
from meshgate.monitoring.slo import RequestWindow
from meshgate.monitoring.slo_store import SloLedger
from meshgate.monitoring.snapshots import SnapshotStore
from meshgate.sql import SqlStore

ROUTERS: list[APIRouter] = [router]


def build_monitoring(
    settings: Settings,
    sql: SqlStore,
    metrics: Metrics,
    *,
    events: EventService,
    readiness: Readiness,
    leases: Leases,
) -> MonitoringService:
    """The monitoring service, not yet started; also sets up the SLO window of ``metrics``
    (this process's requests, written to the SQL store for the cluster's report)."""
    config = settings.monitoring
    window = RequestWindow(retention_seconds=config.slo.retention_seconds)
    metrics.configure_slo(config.slo.paths, window)
    return MonitoringService(
        config,
        metrics,
        events=events,
        readiness=readiness,
        leases=leases,
        snapshots=SnapshotStore(sql),
        slo=SloLedger(sql, window, node=holder_name(), flush_seconds=config.slo.flush_seconds),
    )
