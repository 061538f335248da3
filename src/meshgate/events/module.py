"""The event backbone as a module of the platform."""

from __future__ import annotations

from fastapi import APIRouter

from meshgate.events.backends import open_event_log
from meshgate.events.crypto import MIGRATIONS, DataKeys
from meshgate.events.service import EventService
from meshgate.platform import Platform
from meshgate.sql import Migration


class EventsModule:
    name = "events"
    migrations: list[Migration] = list(MIGRATIONS)

    def __init__(self) -> None:
        self.service: EventService | None = None

    def routers(self) -> list[APIRouter]:
        return []

    async def start(self, platform: Platform) -> None:
        settings = platform.settings
        config = settings.events
        backend = open_event_log(
            config.url,
            data_dir=settings.data_dir,
            namespace=settings.namespace,
            poll_interval=config.poll_interval_seconds,
        )
        service = EventService(
            backend, DataKeys(platform.sql, cache_seconds=config.key_cache_seconds)
        )
        await service.start()
        self.service = service
        platform.events = service
        platform.checks["events"] = backend.ping

    async def close(self) -> None:
        if self.service is not None:
            await self.service.close()
            self.service = None
