"""Upstream credentials as the platform operator manages them (root-tenant ``admin``).

A tenant's admin is not the operator: the collection routes answer it 403, and a named
credential is a 404 to it (a tenant never learns which credentials exist). No route ever
shows a secret; the audit trail records names, sources and grants only.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, Field, SecretStr

from meshgate.auth import Principal
from meshgate.core.routing import current_principal, require
from meshgate.core.state import port_of, service_of
from meshgate.errors import Forbidden, NotFound
from meshgate.governance.ports import AuditRecorder, audited
from meshgate.security.config import CREDENTIAL_NAME, ENV_NAME, TENANT
from meshgate.security.credentials import CredentialVault
from meshgate.sql import InTransaction
from meshgate.strictjson import RequestBody

router = APIRouter(
    prefix="/v1/admin/credentials", tags=["administration"], dependencies=[require("admin")]
)
Name = Annotated[str, Path(pattern=CREDENTIAL_NAME, description="Credential name.")]
Tenant = Annotated[str, Path(pattern=TENANT, description="Tenant granted the credential.")]


class CredentialCreate(RequestBody):
    name: str = Field(pattern=CREDENTIAL_NAME, description="Name versions refer to.")
    secret: SecretStr | None = Field(
        None, min_length=1, max_length=8192, description="The secret, stored sealed."
    )
    env: str | None = Field(
        None,
        pattern=ENV_NAME,
        description="Or an environment variable under an allow-listed prefix.",
    )
    description: str = Field("", max_length=200)
    tenants: list[Annotated[str, Field(pattern=TENANT)]] = Field(
        default_factory=list, max_length=1000, description="Tenants granted it at once."
    )


class Credential(BaseModel):
    name: str
    source: str = Field(description="'sealed' (in the SQL store) or 'env'.")
    env: str | None
    description: str
    tenants: list[str] = Field(description="Tenants granted the credential.")
    created_by: str
    created_at: str


class CredentialList(BaseModel):
    credentials: list[Credential]


def operator(request: Request, *, hide: bool) -> Principal:
    principal = current_principal(request)
    if not principal.is_root:
        if hide:
            raise NotFound("credential not found")
        raise Forbidden("only the platform operator (an admin of the root tenant) manages these")
    return principal


def audit(request: Request, action: str, name: str, details: dict[str, Any]) -> InTransaction:
    """The audit record of a change, for the change's own transaction."""
    principal = current_principal(request)
    return audited(
        port_of(request, AuditRecorder),
        actor=principal.key_id,
        tenant=principal.tenant,
        action=action,
        resource=f"credentials/{name}",
        details=details,
    )


@router.post("", status_code=201, response_model=Credential, summary="Create a credential")
async def create_credential(body: CredentialCreate, request: Request) -> dict[str, Any]:
    principal = operator(request, hide=False)
    source = "env" if body.env is not None else "sealed"
    details = {"source": source, "env": body.env, "tenants": body.tenants}
    return await service_of(request, CredentialVault).create(
        body.name,
        secret=body.secret.get_secret_value() if body.secret else None,
        env=body.env,
        description=body.description,
        actor=principal.key_id,
        tenants=body.tenants,
        then=audit(request, "credential.created", body.name, details),
    )


@router.get("", response_model=CredentialList, summary="List credentials (never secrets)")
async def list_credentials(request: Request) -> dict[str, Any]:
    operator(request, hide=False)
    return {"credentials": await service_of(request, CredentialVault).list()}


@router.get("/{credential}", response_model=Credential, summary="One credential (never its secret)")
async def get_credential(credential: Name, request: Request) -> dict[str, Any]:
    operator(request, hide=True)
    return await service_of(request, CredentialVault).get(credential)


@router.put(
    "/{credential}/grants/{tenant}",
    response_model=Credential,
    summary="Grant a tenant a credential",
)
async def grant_credential(credential: Name, tenant: Tenant, request: Request) -> dict[str, Any]:
    operator(request, hide=True)
    audited_grant = audit(request, "credential.granted", credential, {"tenant": tenant})
    return await service_of(request, CredentialVault).grant(credential, tenant, then=audited_grant)


@router.delete(
    "/{credential}/grants/{tenant}", response_model=Credential, summary="Take a grant back"
)
async def revoke_grant(credential: Name, tenant: Tenant, request: Request) -> dict[str, Any]:
    operator(request, hide=True)
    audited_revoke = audit(request, "credential.grant.revoked", credential, {"tenant": tenant})
    return await service_of(request, CredentialVault).revoke(
        credential, tenant, then=audited_revoke
    )


@router.delete("/{credential}", status_code=204, summary="Delete a credential and its grants")
async def delete_credential(credential: Name, request: Request) -> Response:
    operator(request, hide=True)
    deleted = audit(request, "credential.deleted", credential, {})
    await service_of(request, CredentialVault).delete(credential, then=deleted)
    return Response(status_code=204)
