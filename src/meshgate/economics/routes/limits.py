"""Per-key model allow-lists and limits, and tenant limits (scope ``admin``).

``PATCH /v1/admin/keys/{key_id}`` changes only the fields it names; ``"models": null`` lifts
the allow-list. Tenant limits are the platform operator's: only an admin of the root tenant
sets them, and another tenant's admin sees no tenant but its own.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from meshgate.auth import KeyService
from meshgate.config import LimitsConfig
from meshgate.core.routing import current_principal, require
from meshgate.core.state import port_of, service_of
from meshgate.errors import Forbidden, NotFound
from meshgate.governance.ports import AuditRecorder, audited
from meshgate.models.config import NAME
from meshgate.strictjson import RequestBody

router = APIRouter(prefix="/v1/admin", tags=["administration"], dependencies=[require("admin")])
TenantName = Annotated[str, Path(pattern=r"^[A-Za-z0-9._-]{1,64}$", description="Tenant id.")]
ModelName = Annotated[str, Field(pattern=NAME)]
Count = Annotated[int | None, Field(ge=1)]


class KeyPatch(RequestBody):
    models: list[ModelName] | None = Field(
        None,
        max_length=1000,
        description="The only models the key may call (and that GET /v1/models lists); "
        "null lifts the list.",
    )
    rpm: Count = Field(None, description="Requests per minute; null: the default.")
    tpm: Count = Field(None, description="Tokens per minute; null: the default.")


class KeyView(BaseModel):
    id: str
    tenant: str
    prefix: str
    scopes: list[str]
    models: list[str] | None
    rpm: int | None
    tpm: int | None
    description: str | None
    created_at: str
    expires_at: str | None
    revoked_at: str | None


class TenantLimits(RequestBody):
    rpm: Count = Field(None, description="Requests per minute; null: the default.")
    tpm: Count = Field(None, description="Tokens per minute; null: the default.")


class TenantView(BaseModel):
    tenant: str
    rpm: int | None
    tpm: int | None
    effective_rpm: int
    effective_tpm: int


@router.patch(
    "/keys/{key_id}",
    response_model=KeyView,
    summary="Set a key's model allow-list and limits (only the fields sent change)",
)
async def patch_key(key_id: str, body: KeyPatch, request: Request) -> dict[str, Any]:
    changes = body.model_dump(include=body.model_fields_set)
    keys = service_of(request, KeyService)
    tenant = current_principal(request).tenant_filter
    owner = (await keys.get(key_id, tenant=tenant))["tenant"]
    return await keys.update(
        key_id,
        tenant=tenant,
        changes=changes,
        then=audited(
            port_of(request, AuditRecorder),
            actor=current_principal(request).key_id,
            tenant=owner,
            action="key.changed",
            resource=f"keys/{key_id}",
            details=changes,
        ),
    )


async def _tenant_view(request: Request, tenant: str) -> dict[str, Any]:
    settings = service_of(request, LimitsConfig)
    row = await service_of(request, KeyService).tenant(tenant)
    if row is None:
        raise NotFound(f"no tenant {tenant!r}")
    return {
        "tenant": tenant,
        "rpm": row["rpm"],
        "tpm": row["tpm"],
        "effective_rpm": row["rpm"] or settings.tenant_rpm,
        "effective_tpm": row["tpm"] or settings.tenant_tpm,
    }


def _visible(request: Request, tenant: str) -> None:
    principal = current_principal(request)
    if not principal.is_root and tenant != principal.tenant:
        raise NotFound(f"no tenant {tenant!r}")


@router.get("/tenants/{tenant}", response_model=TenantView, summary="A tenant's limits")
async def get_tenant(tenant: TenantName, request: Request) -> dict[str, Any]:
    _visible(request, tenant)
    return await _tenant_view(request, tenant)


@router.put(
    "/tenants/{tenant}",
    response_model=TenantView,
    summary="Set a tenant's limits (root tenant admins only)",
)
async def put_tenant(tenant: TenantName, body: TenantLimits, request: Request) -> dict[str, Any]:
    _visible(request, tenant)
    principal = current_principal(request)
    if not principal.is_root:
        raise Forbidden("only an admin of the root tenant sets tenant limits")
    await service_of(request, KeyService).set_tenant_limits(
        tenant,
        rpm=body.rpm,
        tpm=body.tpm,
        then=audited(
            port_of(request, AuditRecorder),
            actor=principal.key_id,
            tenant=tenant,
            action="tenant.limits.set",
            resource=f"tenants/{tenant}",
            details=body.model_dump(),
        ),
    )
    return await _tenant_view(request, tenant)
