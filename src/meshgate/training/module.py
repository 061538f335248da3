"""Datasets and training built for the composition root."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter

from meshgate.config import Settings
from meshgate.delivery.rollout_service import RolloutService
from meshgate.events.leases import Leases
from meshgate.events.service import EventService
from meshgate.governance.ports import AuditRecorder
from meshgate.models.artifacts import ArtifactStore
from meshgate.models.config import ModelDeclaration, VersionCreate
from meshgate.models.service import ModelService
from meshgate.sql import SqlStore
from meshgate.training.jobs import JobStore
from meshgate.training.routes import body_limits, router
from meshgate.training.runner import JobRunner
from meshgate.training.service import TrainingService
from meshgate.training.spec import TrainerSpec

ROUTERS: list[APIRouter] = [router]
__all__ = ["ROUTERS", "body_limits", "build_training"]


class Registrar:
    """The registry as training sees it: read a model, add a version (from the platform, so
    the artifact need not pass the API's checks: it was just written to the shared store)."""

    def __init__(self, models: ModelService):
        self.models = models

    async def model(self, tenant: str, name: str) -> dict[str, Any]:
        return await self.models.registry.get_model(tenant, name)

    async def register(
        self, tenant: str, model: str, version: VersionCreate, actor: str
    ) -> dict[str, Any]:
        return await self.models.add_version(tenant, model, version, actor, from_api=False)


class Rollouts:
    """The rollout controller as training sees it: start one, find the one of a version."""

    def __init__(self, rollouts: RolloutService):
        self.rollouts = rollouts

    async def start_rollout(
        self, tenant: str, model: str, body: dict[str, Any], actor: str
    ) -> dict[str, Any]:
        return await self.rollouts.start_rollout(tenant, model, body, actor)

    async def rollout_of(self, tenant: str, model: str, candidate: str) -> dict[str, Any] | None:
        for rollout in await self.rollouts.list(tenant, model):  # newest first
            if rollout.spec.candidate == candidate:
                return rollout.view()
        return None


def trainers_of(declared: Iterable[ModelDeclaration]) -> dict[tuple[str, str], TrainerSpec]:
    return {(d.tenant, d.name): d.trainer for d in declared if d.trainer is not None}


def build_training(
    settings: Settings,
    sql: SqlStore,
    *,
    events: EventService,
    audit: AuditRecorder,
    models: ModelService,
    artifacts: ArtifactStore,
    leases: Leases,
    rollouts: RolloutService | None = None,
) -> tuple[TrainingService, JobRunner]:
    """The service (trainers are declared at start) and the cluster's job runner."""
    jobs = JobStore(sql)
    service = TrainingService(
        jobs,
        events=events,
        publisher=events,
        audit=audit,
        registrar=Registrar(models),
        blobs=artifacts,
        trainers=trainers_of(settings.models),
        work_dir=settings.data_dir.resolve() / "training",
        rollouts=Rollouts(rollouts) if rollouts is not None else None,
        row_group_rows=settings.training.row_group_rows,
    )
    return service, JobRunner(service, jobs, leases, settings.training)
