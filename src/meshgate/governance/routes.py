"""Governance routes (scope ``audit:read``): the audit trail, its verification, its key.

Records are tenant-partitioned: an auditor sees its own tenant's records, an admin of the root
tenant sees all (and may narrow with ``tenant=``). Verification always covers the whole chain,
since a tenant's records are only as trustworthy as the chain they are part of; its answer
carries counts, hashes and the first bad sequence with its reason, never another tenant's
record contents, so any ``audit:read`` key may run it.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from meshgate.core.routing import current_principal, require
from meshgate.core.state import service_of
from meshgate.errors import BadRequest, Forbidden
from meshgate.governance.audit import AuditService, parse_time
from meshgate.governance.store import Filters

router = APIRouter(prefix="/v1/audit", tags=["governance"], dependencies=[require("audit:read")])


def _audit(request: Request) -> AuditService:
    return service_of(request, AuditService)


@router.get("", summary="The audit trail: who did what, when, to which resource")
async def list_records(
    request: Request,
    since: Annotated[
        str | None,
        Query(
            description="From this time (inclusive), RFC 3339.",
            json_schema_extra={"format": "date-time"},
        ),
    ] = None,
    until: Annotated[
        str | None,
        Query(
            description="Before this time (exclusive), RFC 3339.",
            json_schema_extra={"format": "date-time"},
        ),
    ] = None,
    action: Annotated[
        str | None,
        Query(max_length=256, description="Exact action, or a prefix ending in '*' (key.*)."),
    ] = None,
    resource: Annotated[
        str | None,
        Query(
            max_length=1024,
            description="A resource and everything under it: models/support-chat gives the "
            "model's full history (registration, versions, traffic, predictions).",
        ),
    ] = None,
    actor: Annotated[str | None, Query(max_length=256, description="Key id of the actor.")] = None,
    tenant: Annotated[
        str | None, Query(max_length=64, description="Root admins only: one tenant's records.")
    ] = None,
    after: Annotated[
        int, Query(ge=0, le=2**63 - 1, description="Records after this sequence (paging).")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000, description="Records per page.")] = 100,
) -> dict[str, Any]:
    principal = current_principal(request)
    lo, hi = parse_time("since", since), parse_time("until", until)
    if lo is not None and hi is not None and lo > hi:
        raise BadRequest("'since' is after 'until'", param="since")
    if tenant is not None and not principal.is_root and tenant != principal.tenant:
        raise Forbidden("only an admin of the root tenant reads another tenant's records")
    scope = tenant if principal.is_root else principal.tenant
    filters = Filters(
        tenant=scope, since=lo, until=hi, action=action, resource=resource, actor=actor
    )
    return await _audit(request).query(filters, after=after, limit=limit)


@router.get("/verify", summary="Verify the hash chain and the signed checkpoints")
async def verify(request: Request) -> dict[str, Any]:
    return await _audit(request).verify()


@router.get("/public-key", summary="The Ed25519 key that signs the checkpoints")
async def public_key(request: Request) -> dict[str, Any]:
    return _audit(request).public_key()


@router.get("/checkpoints", summary="Signed checkpoints, for anchoring the chain elsewhere")
async def checkpoints(
    request: Request,
    after: Annotated[
        int, Query(ge=0, le=2**63 - 1, description="Checkpoints after this sequence.")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    cps = await _audit(request).store.checkpoints(after=after, limit=limit)
    return {"checkpoints": cps, "next_after": cps[-1]["sequence"] if len(cps) == limit else None}
