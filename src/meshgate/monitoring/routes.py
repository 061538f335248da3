"""Monitoring routes: a model's health per version, and the platform's SLO report."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from meshgate.core.routing import current_principal, require
from meshgate.core.state import service_of
from meshgate.monitoring.config import MonitoringConfig
from meshgate.monitoring.metrics import Metrics
from meshgate.monitoring.service import MonitoringService
from meshgate.monitoring.slo import slo_report

router = APIRouter(tags=["monitoring"])


def monitoring_of(request: Request) -> MonitoringService:
    return service_of(request, MonitoringService)


@router.get(
    "/v1/monitoring/models/{name}",
    summary="A model's versions: requests, error rate, latency, accuracy, drift, open alerts",
    description=(
        "Figures of the whole cluster, the same on every node, built from the model's "
        "prediction and feedback events in the durable log (feedback counts whichever node "
        "received it), for the caller's tenant: per version the requests and errors, latency "
        "percentiles over the latest predictions, accuracy from feedback (overall, its "
        "reference and its current window), drift of each input feature against its "
        "reference window, and the alerts open now. 404 until a prediction was recorded."
    ),
    dependencies=[require("audit:read")],
)
async def model_monitoring(request: Request, name: str) -> dict[str, Any]:
    tenant = current_principal(request).tenant
    return await monitoring_of(request).model_report(tenant, name)


@router.get(
    "/v1/slo",
    summary="Availability, error rate and p95 latency over a window, against the targets",
    description=(
        "Over the synchronous calls (monitoring.slo.paths) this process served in the window: "
        "availability is the share not answered 500 or 503 (the platform itself failing), "
        "error rate the share answered with any 5xx (upstream failures included), and p95 "
        "the latency of the calls that did not fail, read at most 5% high. Each beside its "
        "target, with whether it is met and the share of the error budget left."
    ),
    dependencies=[require("audit:read")],
)
async def slo(
    request: Request,
    window: Annotated[
        int | None,
        Query(
            ge=10,
            le=366 * 86400,
            description="Seconds to look back (at most the retention); default"
            " monitoring.slo.window_seconds.",
        ),
    ] = None,
) -> dict[str, Any]:
    targets = service_of(request, MonitoringConfig).slo
    # Nothing older than the retention is kept: a longer window reports the retention
    # (window_seconds in the answer says which was used).
    seconds = min(window or targets.window_seconds, targets.retention_seconds)
    summary = service_of(request, Metrics).slo_window.summary(seconds)
    return slo_report(summary, window_seconds=seconds, targets=targets)
