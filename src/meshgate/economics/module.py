"""Cost and safety at the gateway as a module of the platform: model allow-lists and limits,
prices and spend, budgets, the response cache and guardrails."""

from __future__ import annotations

from fastapi import APIRouter

from meshgate.platform import Platform
from meshgate.sql import Migration


class EconomicsModule:
    name = "economics"
    migrations: list[Migration] = []

    def routers(self) -> list[APIRouter]:
        from meshgate.economics.routes import routers

        return routers()

    async def start(self, platform: Platform) -> None:
        pass

    async def close(self) -> None:
        pass
