"""Operations: liveness, readiness, metrics."""

from __future__ import annotations

import asyncio
import logging

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from meshgate.core.health import HealthCheck, Readiness
from meshgate.core.routing import HotRoute, current_principal, hot_route, require
from meshgate.core.state import service_of
from meshgate.errors import Forbidden, MeshgateError
from meshgate.monitoring.metrics import Metrics

router = APIRouter(tags=["operations"])
READY_TIMEOUT = 2.0
log = logging.getLogger("meshgate.gateway")


@router.get("/healthz", summary="Liveness: 200 while the process serves")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/health",
    summary="Liveness (deprecated alias of /healthz)",
    deprecated=True,
    openapi_extra={"x-sunset": "2027-06-30", "x-successor": "/healthz"},
)
async def health() -> dict[str, str]:
    return {"status": "ok"}


async def _probe(check: HealthCheck) -> str | None:
    try:
        await asyncio.wait_for(check(), READY_TIMEOUT)
    except MeshgateError as exc:  # our own messages name the backend, never its address
        return exc.detail
    except TimeoutError:
        return f"does not answer within {READY_TIMEOUT:g} s"
    except Exception as exc:  # a driver's message may name hosts: the log has it
        log.warning("readiness check failed: %r", exc)
        return f"failed ({type(exc).__name__})"
    return None


@router.get("/readyz", summary="Readiness: 200 only when every configured backend answers")
async def readyz(request: Request) -> Response:
    checks = service_of(request, Readiness).checks
    names = list(checks)
    results = await asyncio.gather(*(_probe(checks[n]) for n in names))
    failing = {n: r for n, r in zip(names, results, strict=True) if r is not None}
    metrics = service_of(request, Metrics)
    for name in names:
        metrics.backend_up.labels(name).set(0 if name in failing else 1)
    body: dict[str, object] = {
        "status": "ready" if not failing else "unavailable",
        "backends": names,
    }
    if failing:
        body["failing"] = failing
    return JSONResponse(body, status_code=503 if failing else 200)


@router.get(
    "/metrics",
    summary="Prometheus metrics of the whole platform (the operator's: a root-tenant admin key "
    "or the metrics token)",
    dependencies=[require("admin")],
    response_class=Response,
)
async def metrics(request: Request) -> Response:
    # Every tenant's model names and counts are in here: a tenant's admin reads its own
    # figures through /v1/monitoring instead.
    if not current_principal(request).is_root:
        raise Forbidden(
            "metrics are the platform operator's; read your tenant's figures at /v1/monitoring"
        )
    return Response(
        service_of(request, Metrics).render(),
        media_type="text/plain; version=0.0.4; charset=utf-8",
    )


async def whoami(request: Request) -> Response:
    p = current_principal(request)
    body = {
        "key_id": p.key_id,
        "tenant": p.tenant,
        "scopes": sorted(p.scopes),
        "rpm": p.rpm,
        "tpm": p.tpm,
    }
    return Response(orjson.dumps(body), media_type="application/json")


HOT: list[HotRoute] = []
hot_route(
    router,
    "GET",
    "/v1/whoami",
    whoami,
    scope=None,
    hot=HOT,
    summary="The calling key: id, tenant, scopes and limits",
)
