"""Monitoring routes: a model's health per version, and the platform's SLO report."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from meshgate.core.routing import current_principal, require
from meshgate.core.state import service_of
from meshgate.errors import Forbidden
from meshgate.monitoring.config import MonitoringConfig
from meshgate.monitoring.service import MonitoringService
from meshgate.monitoring.slo import slo_report

router = APIRouter(tags=["monitoring"])


def monitoring_of(request: Request) -> MonitoringService:
    return service_of(request, MonitoringService)


@router.get(
    "/v1/monitoring/models/{name}",
    summary="A model's versions: requests, error rate, latency, accuracy, drift, breakers, alerts",
    description=(
        "Figures of the whole cluster, the same on every node, built from the model's "
        "prediction and feedback events in the durable log (feedback counts whichever node "
        "received it), for the caller's tenant: per version the requests and errors, latency "
        "percentiles over the latest predictions, accuracy from feedback (overall, its "
        "reference and its current window), drift of each input feature against its "
        "reference window, the circuit breaker (`open` while any node reports it open or "
        "half-open, with those nodes and until when each report holds) and the alerts open "
        "now. `complete` is false while this node is still reading the events the log held when "
        "it started (a node with no snapshot reads the whole log first): its figures are "
        "partial until then. 404 until a prediction was recorded."
    ),
    dependencies=[require("audit:read")],
)
async def model_monitoring(request: Request, name: str) -> dict[str, Any]:
    tenant = current_principal(request).tenant
    return await monitoring_of(request).model_report(tenant, name)


ALL_TENANTS = "*"


@router.get(
    "/v1/slo",
    summary="Availability, error rate and p95 latency over a window, against the targets",
    description=(
        "Over the synchronous calls (monitoring.slo.paths) of the caller's tenant served by "
        "every node of the cluster in the window (each node writes its figures to the shared "
        "SQL store every monitoring.slo.flush_seconds; the answer is the same on every node "
        "and survives restarts): availability is the share not answered 500 or 503 (the "
        "platform itself failing), error rate the share answered with any 5xx (upstream "
        "failures included), and p95 the latency of the calls that did not fail, read at "
        "most 5% high. Each beside its target, with whether it is met and the share of the "
        "error budget left. A key sees its own tenant's figures only; an admin key of the "
        "root tenant (the operator) may name another tenant, or `*` for every tenant."
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
    tenant: Annotated[
        str | None,
        Query(
            pattern=r"^([A-Za-z0-9._-]{1,64}|\*)$",
            description="Whose calls: the caller's tenant by default; another tenant, or `*`"
            " for every tenant, for an admin key of the root tenant only.",
        ),
    ] = None,
) -> dict[str, Any]:
    principal = current_principal(request)
    tenant = tenant or principal.tenant
    if tenant != principal.tenant and not (principal.is_root and principal.is_admin):
        raise Forbidden("a key reads its own tenant's SLO; the platform's is the operator's")
    targets = service_of(request, MonitoringConfig).slo
    # Nothing older than the retention is kept: a longer window reports the retention
    # (window_seconds in the answer says which was used).
    seconds = min(window or targets.window_seconds, targets.retention_seconds)
    ledger = monitoring_of(request).slo
    summary = await ledger.summary(seconds, None if tenant == ALL_TENANTS else tenant)
    return {"tenant": tenant, **slo_report(summary, window_seconds=seconds, targets=targets)}
