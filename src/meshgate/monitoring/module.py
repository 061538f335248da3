"""The monitoring as a module of the platform."""

from __future__ import annotations

from fastapi import APIRouter

from meshgate.monitoring.logs import flush_logs
from meshgate.monitoring.routes import router
from meshgate.monitoring.service import MonitoringService
from meshgate.monitoring.slo import RequestWindow
from meshgate.platform import Platform
from meshgate.sql import Migration


class MonitoringModule:
    name = "monitoring"
    migrations: list[Migration] = []

    def __init__(self) -> None:
        self.service: MonitoringService | None = None

    def routers(self) -> list[APIRouter]:
        return [router]

    async def start(self, platform: Platform) -> None:
        config = platform.settings.monitoring
        platform.metrics.configure_slo(
            config.slo.paths, RequestWindow(retention_seconds=config.slo.retention_seconds)
        )
        service = MonitoringService(
            config, platform.metrics, events=platform.events, checks=platform.checks
        )
        await service.start()
        self.service = service
        platform.monitoring = service

    async def close(self) -> None:
        if self.service is not None:
            await self.service.close()
            self.service = None
        # uvicorn logs its last lines after this; write them directly so none is lost.
        flush_logs()
