"""Rollouts over HTTP: ``/v1/registry/models/{name}/rollouts`` (``registry:write`` to start
or move one; any key of the tenant reads them)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, JsonValue

from meshgate.core.routing import current_principal, require
from meshgate.core.state import service_of
from meshgate.delivery.rollout_service import RolloutService
from meshgate.delivery.rollout_spec import NAME, AnalysisBounds, Mode, RolloutCreate, State

router = APIRouter(prefix="/v1/registry/models/{name}/rollouts", tags=["rollouts"])
write = [require("registry:write")]
ModelName = Annotated[str, Path(pattern=NAME, description="Model name.")]
RolloutId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="Rollout id.")]


class RolloutView(BaseModel):
    id: str
    model: str
    candidate: str
    baseline: str
    mode: Mode
    steps: list[int]
    interval_seconds: float
    min_requests: int
    analysis: AnalysisBounds
    state: State
    phase: Literal["shadow", "canary", "switched"]
    step: int
    current_step: int | None
    weight: int
    traffic_applied: bool
    """False for the moment between a transition and the traffic change it implies."""
    reason: str
    figures: dict[str, JsonValue]
    steps_analysis: list[dict[str, JsonValue]]
    created_by: str
    created_at: str
    updated_at: str
    evaluated_at: str | None


class RolloutList(BaseModel):
    rollouts: list[RolloutView]


def _service(request: Request) -> RolloutService:
    return service_of(request, RolloutService)


@router.post(
    "",
    status_code=201,
    response_model=RolloutView,
    dependencies=write,
    summary="Start a rollout of a candidate version against a baseline",
)
async def create(name: ModelName, body: RolloutCreate, request: Request) -> dict[str, Any]:
    p = current_principal(request)
    return (await _service(request).create(p.tenant, name, body, p.key_id)).view()


@router.get("", response_model=RolloutList, summary="The model's rollouts, newest first")
async def list_rollouts(name: ModelName, request: Request) -> dict[str, Any]:
    tenant = current_principal(request).tenant
    return {"rollouts": [r.view() for r in await _service(request).list(tenant, name)]}


@router.get(
    "/{rollout_id}",
    response_model=RolloutView,
    summary="One rollout: state, step, and the analysis figures of every step",
)
async def get_rollout(name: ModelName, rollout_id: RolloutId, request: Request) -> dict[str, Any]:
    tenant = current_principal(request).tenant
    return (await _service(request).get(tenant, name, rollout_id)).view()


def _control(action: str, summary: str) -> None:
    async def handler(name: ModelName, rollout_id: RolloutId, request: Request) -> dict[str, Any]:
        p = current_principal(request)
        moved = await _service(request).control(p.tenant, name, rollout_id, action, p.key_id)
        return moved.view()

    handler.__name__ = f"{action}_rollout"
    router.add_api_route(
        f"/{{rollout_id}}/{action}",
        handler,
        methods=["POST"],
        response_model=RolloutView,
        dependencies=write,
        summary=summary,
    )


_control("pause", "Pause a rollout: it stays at its step until resumed")
_control("resume", "Resume a paused rollout")
_control("promote", "Promote the candidate now: all traffic, and the production alias")
_control("abort", "Abort: traffic back to the baseline (a blue-green switch is undone)")
