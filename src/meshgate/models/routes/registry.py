"""Registry and traffic routes (``registry:write`` to change; any key of the tenant reads),
and feedback on predictions."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import Field

from meshgate.core.routing import current_principal, require
from meshgate.core.state import port_of
from meshgate.errors import Conflict
from meshgate.models.config import (
    NAME,
    AliasSet,
    ModelCreate,
    TrafficPolicy,
    VersionCreate,
)
from meshgate.models.routes.common import service_of
from meshgate.models.traffic_owner import TrafficOwner
from meshgate.strictjson import RequestBody

router = APIRouter(prefix="/v1", tags=["registry"])
write = [require("registry:write")]
ModelName = Annotated[str, Path(pattern=NAME, description="Model name.")]


@router.post("/registry/models", status_code=201, dependencies=write, summary="Register a model")
async def create_model(body: ModelCreate, request: Request) -> dict[str, Any]:
    p = current_principal(request)
    return await service_of(request).create_model(p.tenant, body, p.key_id)


@router.get("/registry/models", summary="Models with versions, aliases and traffic")
async def list_models(request: Request) -> dict[str, Any]:
    tenant = current_principal(request).tenant
    return {"models": await service_of(request).registry.list_models(tenant)}


@router.get("/registry/models/{name}", summary="One model with versions, aliases and traffic")
async def get_model(name: ModelName, request: Request) -> dict[str, Any]:
    tenant = current_principal(request).tenant
    return await service_of(request).registry.get_model(tenant, name)


@router.get(
    "/registry/models/{name}/history",
    summary="Every change of the model: versions, aliases, traffic; who and when",
)
async def history(name: ModelName, request: Request) -> dict[str, Any]:
    tenant = current_principal(request).tenant
    return {"history": await service_of(request).registry.history(tenant, name)}


@router.post(
    "/registry/models/{name}/versions",
    status_code=201,
    dependencies=write,
    summary="Register an immutable version",
)
async def add_version(name: ModelName, body: VersionCreate, request: Request) -> dict[str, Any]:
    p = current_principal(request)
    return await service_of(request).add_version(p.tenant, name, body, p.key_id)


@router.put(
    "/registry/models/{name}/aliases/{alias}",
    dependencies=write,
    summary="Point an alias at a version",
)
async def set_alias(
    name: ModelName,
    alias: Annotated[str, Path(pattern=NAME)],
    body: AliasSet,
    request: Request,
) -> dict[str, Any]:
    p = current_principal(request)
    return await service_of(request).set_alias(p.tenant, name, alias, body.version, p.key_id)


OWNED: dict[int | str, dict[str, Any]] = {
    409: {"description": "A running rollout sets this model's traffic; nothing changed."}
}


async def refuse_while_owned(request: Request, tenant: str, name: str) -> None:
    owner = await port_of(request, TrafficOwner).traffic_owner(tenant, name)
    if owner is not None:
        raise Conflict(
            f"{owner} sets the traffic of {name!r} while it runs; promote or abort it first",
            param="name",
        )


@router.put(
    "/registry/models/{name}/traffic",
    dependencies=write,
    summary="Set the traffic policy: split, shadows, stickiness, fallback",
    description="409 while a rollout of the model runs (it sets the traffic at every step).",
    responses=OWNED,
)
async def set_traffic(name: ModelName, body: TrafficPolicy, request: Request) -> dict[str, Any]:
    p = current_principal(request)
    await refuse_while_owned(request, p.tenant, name)
    return await service_of(request).set_traffic(p.tenant, name, body, p.key_id)


class TrafficPatch(RequestBody):
    """A JSON merge patch (RFC 7396) of the traffic policy: members left out stay as they are,
    ``null`` removes (a version from ``split``, or a list back to empty)."""

    split: dict[str, Annotated[int, Field(ge=0, le=100)] | None] | None = Field(
        None, description="Merged into the split; the result's weights must sum to 100."
    )
    shadow: list[Annotated[str, Field(pattern=NAME)]] | None = None
    sticky: Literal["user", "session", "none"] | None = None
    fallback: list[Annotated[str, Field(pattern=NAME)]] | None = None


MERGE_PATCH = {
    "requestBody": {
        "required": True,
        "content": {
            media: {"schema": {"$ref": "#/components/schemas/TrafficPatch"}}
            for media in ("application/merge-patch+json", "application/json")
        },
    }
}


@router.patch(
    "/registry/models/{name}/traffic",
    dependencies=write,
    openapi_extra=MERGE_PATCH,
    summary="Change part of the traffic policy (JSON merge patch); the rest stays",
    description="409 while a rollout of the model runs (it sets the traffic at every step).",
    responses=OWNED,
)
async def patch_traffic(name: ModelName, body: TrafficPatch, request: Request) -> dict[str, Any]:
    p = current_principal(request)
    await refuse_while_owned(request, p.tenant, name)
    patch = body.model_dump(exclude_unset=True)
    return await service_of(request).patch_traffic(p.tenant, name, patch, p.key_id)


class Feedback(RequestBody):
    label: Any = Field(None, description="The true label or value.")
    score: float | None = Field(None, ge=0.0, le=1.0, strict=True)
    comment: str | None = Field(None, max_length=2000)


@router.post(
    "/predictions/{prediction_id}/feedback",
    status_code=201,
    dependencies=[require("inference")],
    tags=["inference"],
    summary="Ground truth for a prediction (monitoring, retraining)",
)
async def feedback(
    prediction_id: Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,128}$")],
    body: Feedback,
    request: Request,
) -> dict[str, Any]:
    from meshgate.errors import ValidationFailed

    if body.label is None and body.score is None:
        raise ValidationFailed("feedback needs a label or a score", param="label")
    tenant = current_principal(request).tenant
    event_id = await service_of(request).publish_feedback(
        tenant=tenant,
        prediction_id=prediction_id,
        feedback=body.model_dump(exclude_none=True),
    )
    return {"id": event_id, "prediction_id": prediction_id}
