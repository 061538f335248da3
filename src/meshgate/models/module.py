"""The model services as a module of the platform."""

from __future__ import annotations

from fastapi import APIRouter

from meshgate.platform import Platform
from meshgate.sql import Migration


class ModelsModule:
    name = "models"
    migrations: list[Migration] = []

    def routers(self) -> list[APIRouter]:
        return []

    async def start(self, platform: Platform) -> None:
        pass

    async def close(self) -> None:
        pass
