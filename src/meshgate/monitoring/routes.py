"""Monitoring routes: a model's health per version, and the platform's SLO report."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from meshgate.errors import BackendUnavailable, ValidationFailed
from meshgate.gateway.security import current_principal, require
from meshgate.monitoring.service import MonitoringService
from meshgate.monitoring.slo import slo_report
from meshgate.platform import platform_of

router = APIRouter(tags=["monitoring"])


def monitoring_of(request: Request) -> MonitoringService:
    service = platform_of(request).monitoring
    if service is None:
        raise BackendUnavailable("monitoring is not running")
    return service


@router.get(
    "/v1/monitoring/models/{name}",
    summary="A model's versions: requests, error rate, latency, accuracy, drift, open alerts",
    dependencies=[require("audit:read")],
)
async def model_monitoring(request: Request, name: str) -> dict[str, Any]:
    tenant = current_principal(request).tenant
    return await monitoring_of(request).model_report(tenant, name)


@router.get(
    "/v1/slo",
    summary="Availability, error rate and p95 latency over a window, against the targets",
    dependencies=[require("audit:read")],
)
async def slo(
    request: Request,
    window: Annotated[
        int | None,
        Query(ge=10, description="Seconds to look back; default monitoring.slo.window_seconds."),
    ] = None,
) -> dict[str, Any]:
    platform = platform_of(request)
    targets = platform.settings.monitoring.slo
    seconds = window or targets.window_seconds
    if seconds > targets.retention_seconds:
        raise ValidationFailed(
            f"'window' must be at most {targets.retention_seconds} seconds (the retention)",
            field="window",
        )
    summary = platform.metrics.slo_window.summary(seconds)
    return slo_report(summary, window_seconds=seconds, targets=targets)
