"""Progressive delivery built for the composition root: feature flags and rollouts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from meshgate.context.model import ContextNotFound
from meshgate.context.service import ContextService
from meshgate.delivery.flag_routes import router as flag_router
from meshgate.delivery.flag_service import FlagService, Profile
from meshgate.delivery.rollout_controller import RolloutController
from meshgate.delivery.rollout_routes import router as rollout_router
from meshgate.delivery.rollout_service import RolloutService
from meshgate.delivery.rollout_store import RolloutStore
from meshgate.events.leases import Leases
from meshgate.events.service import EventService
from meshgate.governance.ports import AuditRecorder
from meshgate.models.config import TrafficPolicy
from meshgate.models.service import ModelService
from meshgate.sql import SqlStore

ROUTERS: list[APIRouter] = [flag_router, rollout_router]


def build_flags(
    sql: SqlStore, *, events: EventService, audit: AuditRecorder, context: ContextService
) -> FlagService:
    async def profile(tenant: str, user_id: str) -> Profile | None:
        try:
            user = await context.get_user(tenant, user_id)
        except ContextNotFound:
            return None
        return user.attributes, user.preferences

    return FlagService(
        sql,
        events=events,
        feed=events,
        latest=events.log.last_sequence,
        audit=audit,
        profiles=profile,
    )


class RegistryAdapter:
    """The registry as rollouts see it: the model service's own reads and changes, so every
    traffic and alias change has the events and audit records of the traffic API."""

    def __init__(self, models: ModelService):
        self.models = models

    async def get_model(self, tenant: str, name: str) -> dict[str, Any]:
        return await self.models.registry.get_model(tenant, name)

    async def set_traffic(
        self, tenant: str, model: str, policy: dict[str, Any], actor: str
    ) -> dict[str, Any]:
        typed = TrafficPolicy.model_validate(policy)
        return await self.models.set_traffic(tenant, model, typed, actor)

    async def set_alias(
        self, tenant: str, model: str, alias: str, version: str, actor: str
    ) -> dict[str, Any]:
        return await self.models.set_alias(tenant, model, alias, version, actor)


def build_rollouts(
    sql: SqlStore,
    *,
    events: EventService,
    audit: AuditRecorder,
    models: ModelService,
    leases: Leases,
) -> tuple[RolloutService, RolloutController]:
    service = RolloutService(
        RolloutStore(sql),
        registry=RegistryAdapter(models),
        events=events,
        audit=audit,
        log_position=events.log.last_sequence,
    )
    return service, RolloutController(service, log_reader=events.log, leases=leases)
