"""Feature flags over HTTP: ``/v1/flags`` (scope ``registry:write`` to change them,
``inference`` to read and evaluate them)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, Field, JsonValue

from meshgate.auth.identity import end_user
from meshgate.core.routing import current_principal, require
from meshgate.core.state import service_of
from meshgate.delivery.flag_service import FlagService
from meshgate.delivery.flags import FLAG_KEY, FlagSpec
from meshgate.errors import MethodNotAllowed
from meshgate.strictjson import RequestBody

router = APIRouter(prefix="/v1/flags", tags=["feature flags"])
FlagKey = Annotated[str, Path(pattern=FLAG_KEY, description="The flag's key.")]
FlagName = Annotated[str, Field(pattern=FLAG_KEY)]


class FlagView(BaseModel):
    key: str
    variants: dict[str, JsonValue]
    default: str
    rules: list[dict[str, str]]
    fractional: dict[str, int] | None
    enabled: bool
    description: str
    version: int
    updated_by: str
    updated_at: str


class FlagList(BaseModel):
    flags: list[FlagView]


class EvaluateRequest(RequestBody):
    user_id: str | None = Field(
        None,
        min_length=1,
        max_length=256,
        description="The user to evaluate for; naming one needs 'users:assert' unless the "
        "caller is that user.",
    )
    flags: list[FlagName] = Field(min_length=1, max_length=100)


class FlagValue(BaseModel):
    value: JsonValue
    variant: str
    reason: str


class EvaluateResponse(BaseModel):
    flags: dict[str, FlagValue]


def _service(request: Request) -> FlagService:
    return service_of(request, FlagService)


@router.api_route(
    "/evaluate",
    methods=["GET", "PUT", "PATCH", "DELETE"],
    include_in_schema=False,
    dependencies=[require("inference")],
)
async def evaluate_other_methods() -> None:
    """``/v1/flags/evaluate`` is POST only: the concrete path shadows ``/{flag_key}`` for
    every method, as OpenAPI reads it, so no flag is named ``evaluate``."""
    raise MethodNotAllowed("only POST evaluates flags", headers={"Allow": "POST"})


@router.put(
    "/{flag_key}",
    response_model=FlagView,
    summary="Create or replace a feature flag",
    dependencies=[require("registry:write")],
)
async def put_flag(flag_key: FlagKey, spec: FlagSpec, request: Request) -> dict[str, Any]:
    principal = current_principal(request)
    return await _service(request).put(principal.tenant, flag_key, spec, principal.key_id)


@router.get(
    "",
    response_model=FlagList,
    summary="Every flag of the tenant",
    dependencies=[require("inference")],
)
async def list_flags(request: Request) -> dict[str, Any]:
    return {"flags": await _service(request).list(current_principal(request).tenant)}


@router.get(
    "/{flag_key}", response_model=FlagView, summary="One flag", dependencies=[require("inference")]
)
async def get_flag(flag_key: FlagKey, request: Request) -> dict[str, Any]:
    return await _service(request).describe(current_principal(request).tenant, flag_key)


@router.delete(
    "/{flag_key}",
    status_code=204,
    summary="Delete a flag",
    dependencies=[require("registry:write")],
    response_class=Response,
)
async def delete_flag(flag_key: FlagKey, request: Request) -> Response:
    principal = current_principal(request)
    await _service(request).delete(principal.tenant, flag_key, principal.key_id)
    return Response(status_code=204)


@router.post(
    "/evaluate",
    response_model=EvaluateResponse,
    summary="Evaluate flags for a user: value, variant and reason of each",
    dependencies=[require("inference")],
)
async def evaluate(body: EvaluateRequest, request: Request) -> dict[str, Any]:
    principal = current_principal(request)
    user_id = end_user(principal, body.user_id, param="user_id")
    found = await _service(request).evaluate(principal.tenant, user_id, body.flags)
    return {"flags": {k: e.as_dict() for k, e in found.items()}}
