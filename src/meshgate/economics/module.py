"""Cost and safety at the gateway as a module of the platform: model allow-lists and limits,
prices and spend, budgets, the response cache and guardrails."""

from __future__ import annotations

from fastapi import APIRouter

from meshgate.economics.policies import MIGRATIONS
from meshgate.platform import Platform
from meshgate.sql import Migration


class EconomicsModule:
    """Starts after the model services: it puts its gate in their chat flow."""

    name = "economics"
    migrations: list[Migration] = MIGRATIONS

    def routers(self) -> list[APIRouter]:
        from meshgate.economics.routes import routers

        return routers()

    async def start(self, platform: Platform) -> None:
        from meshgate.economics.service import EconomicsService

        service = EconomicsService(platform)
        if platform.models is not None:
            platform.models.inference.gate = service.gate
        platform.economics = service

    async def close(self) -> None:
        pass
