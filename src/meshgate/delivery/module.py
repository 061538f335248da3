"""Progressive delivery built for the composition root: feature flags."""

from __future__ import annotations

from fastapi import APIRouter

from meshgate.context.model import ContextNotFound
from meshgate.context.service import ContextService
from meshgate.delivery.flag_routes import router as flag_router
from meshgate.delivery.flag_service import FlagService, Profile
from meshgate.events.service import EventService
from meshgate.governance.ports import AuditRecorder
from meshgate.sql import SqlStore

ROUTERS: list[APIRouter] = [flag_router]


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
