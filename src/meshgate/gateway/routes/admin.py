"""Administration: API keys and their tenants (scope ``admin``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, field_validator

from meshgate.auth import SCOPES, KeyService, new_key_id
from meshgate.core.routing import current_principal, require
from meshgate.core.state import port_of, service_of
from meshgate.errors import Conflict, Forbidden
from meshgate.governance.ports import AuditRecorder, audited
from meshgate.strictjson import RequestBody

router = APIRouter(prefix="/v1/admin", tags=["administration"], dependencies=[require("admin")])


class KeyCreate(RequestBody):
    tenant: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9._-]+$",
        description="Tenant of the new key; default the caller's. Only root admins name another.",
    )
    scopes: list[Annotated[str, Field(json_schema_extra={"enum": list(SCOPES)})]] = Field(
        ..., min_length=1
    )
    rpm: Annotated[int | None, Field(ge=1, le=10**9)] = Field(
        None, description="Requests per minute; default from config."
    )
    tpm: Annotated[int | None, Field(ge=1, le=10**12)] = Field(
        None, description="Tokens per minute; default from config."
    )
    expires_at: datetime | None = Field(
        None, description="RFC 3339 time; the key is refused from then on."
    )

    @field_validator("expires_at", mode="before")
    @classmethod
    def _a_time(cls, value: object) -> object:
        # A number would be read as seconds since 1970: only a written time is a time.
        if value is not None and not isinstance(value, str | datetime):
            raise ValueError("expires_at must be an RFC 3339 time")
        return value

    description: str | None = Field(None, max_length=200)


class KeyCreated(BaseModel):
    id: str
    key: str = Field(description="The secret, shown this once.")
    tenant: str
    scopes: list[str]
    rpm: int | None
    tpm: int | None
    expires_at: str | None


@router.post("/keys", status_code=201, response_model=KeyCreated, summary="Create an API key")
async def create_key(body: KeyCreate, request: Request) -> dict[str, Any]:
    principal = current_principal(request)
    tenant = body.tenant or principal.tenant
    if tenant != principal.tenant and not principal.is_root:
        raise Forbidden("only an admin of the root tenant creates keys for another tenant")
    key_id = new_key_id()
    created = await service_of(request, KeyService).create(
        tenant=tenant,
        scopes=body.scopes,
        rpm=body.rpm,
        tpm=body.tpm,
        expires_at=body.expires_at,
        description=body.description,
        key_id=key_id,
        then=audited(
            port_of(request, AuditRecorder),
            actor=principal.key_id,
            tenant=tenant,
            action="key.created",
            resource=f"keys/{key_id}",
            details={"scopes": body.scopes},
        ),
    )
    return {**created.record, "key": created.key}


@router.get("/keys", summary="List API keys (never their secrets)")
async def list_keys(request: Request) -> dict[str, Any]:
    keys = await service_of(request, KeyService).list(
        tenant=current_principal(request).tenant_filter
    )
    return {"keys": keys}


@router.get("/keys/{key_id}", summary="One API key")
async def get_key(key_id: str, request: Request) -> dict[str, Any]:
    return await service_of(request, KeyService).get(
        key_id, tenant=current_principal(request).tenant_filter
    )


@router.delete("/keys/{key_id}", summary="Revoke an API key")
async def revoke_key(key_id: str, request: Request) -> dict[str, Any]:
    if key_id == current_principal(request).key_id:
        # Revoking the key in use would lock its holder out mid-operation (the bootstrap
        # key is often the only admin key): another admin key has to do it.
        raise Conflict("an API key cannot revoke itself; revoke it with another admin key")
    keys = service_of(request, KeyService)
    tenant = current_principal(request).tenant_filter
    owner = (await keys.get(key_id, tenant=tenant))["tenant"]
    return await keys.revoke(
        key_id,
        tenant=tenant,
        then=audited(
            port_of(request, AuditRecorder),
            actor=current_principal(request).key_id,
            tenant=owner,
            action="key.revoked",
            resource=f"keys/{key_id}",
            details={},
        ),
    )
