"""A model's guardrails and response cache: ``PUT`` replaces (``registry:write``), ``GET``
reads."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request

from meshgate.core.routing import current_principal, require
from meshgate.core.state import service_of
from meshgate.economics.cache import CacheSet
from meshgate.economics.guardrails import GuardrailsSet
from meshgate.economics.policies import stored_guardrails
from meshgate.economics.routes.common import economics_of, existing_model
from meshgate.errors import ValidationFailed
from meshgate.models.config import NAME
from meshgate.models.service import ModelService

router = APIRouter(prefix="/v1/registry/models", tags=["registry"])
ModelName = Annotated[str, Path(pattern=NAME, description="Model name.")]


@router.get("/{name}/guardrails", summary="The model's guardrail pipeline")
async def get_guardrails(name: ModelName, request: Request) -> dict[str, Any]:
    tenant = await existing_model(request, name)
    return {"guardrails": await economics_of(request).policies.guardrails(tenant, name)}


@router.put(
    "/{name}/guardrails",
    dependencies=[require("registry:write")],
    summary="Replace the model's guardrail pipeline (checks run in the order given)",
)
async def put_guardrails(name: ModelName, body: GuardrailsSet, request: Request) -> dict[str, Any]:
    tenant = await existing_model(request, name)
    actor = current_principal(request).key_id
    economics = economics_of(request)
    details = {"guardrails": stored_guardrails(body)}
    audit = economics.audited(actor, tenant, "model.guardrails.set", f"models/{name}", details)
    stored = await economics.policies.set_guardrails(tenant, name, body, actor, then=audit)
    return {"guardrails": stored}


@router.get("/{name}/cache", summary="The model's response cache")
async def get_cache(name: ModelName, request: Request) -> dict[str, Any]:
    tenant = await existing_model(request, name)
    return await economics_of(request).policies.cache_policy(tenant, name)


@router.put(
    "/{name}/cache",
    dependencies=[require("registry:write")],
    summary="Turn the model's response cache on (exact or semantic) or off",
)
async def put_cache(name: ModelName, body: CacheSet, request: Request) -> dict[str, Any]:
    tenant = await existing_model(request, name)
    if body.embedding_model is not None:
        await embedding_model(request, tenant, body.embedding_model)
    actor = current_principal(request).key_id
    economics = economics_of(request)
    audit = economics.audited(actor, tenant, "model.cache.set", f"models/{name}", body.model_dump())
    stored = await economics.policies.set_cache(tenant, name, body, actor, then=audit)
    return stored


async def embedding_model(request: Request, tenant: str, name: str) -> None:
    """The semantic cache's embedding model must be an embedding model of the same tenant."""
    found = await service_of(request, ModelService).registry.find_model(tenant, name)
    if found is None or found.get("task") != "embedding":
        raise ValidationFailed(
            f"embedding_model: {name!r} is not an embedding model of this tenant",
            param="embedding_model",
        )
