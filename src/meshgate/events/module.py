"""The event backbone as a module of the platform."""

from __future__ import annotations

from fastapi import APIRouter

from meshgate.events import routes, webhook_routes
from meshgate.events.backends import open_event_log
from meshgate.events.crypto import MIGRATIONS as KEY_MIGRATIONS
from meshgate.events.crypto import DataKeys
from meshgate.events.sealing import Sealer, derive
from meshgate.events.service import EventService
from meshgate.events.subscriptions import MIGRATIONS as SUBSCRIPTION_MIGRATIONS
from meshgate.events.subscriptions import SubscriptionStore
from meshgate.events.webhooks import WebhookDispatcher
from meshgate.platform import Platform
from meshgate.sql import Migration


class EventsModule:
    name = "events"
    migrations: list[Migration] = KEY_MIGRATIONS + SUBSCRIPTION_MIGRATIONS

    def __init__(self) -> None:
        self.service: EventService | None = None

    def routers(self) -> list[APIRouter]:
        return [routes.router, webhook_routes.router]

    async def start(self, platform: Platform) -> None:
        service = build_service(platform)
        await service.start()
        self.service = service
        platform.events = service
        platform.checks["events"] = service.log.ping
        if service.webhooks is not None:
            await service.webhooks.start()

    async def close(self) -> None:
        if self.service is not None:
            if self.service.webhooks is not None:
                await self.service.webhooks.close()
            await self.service.close()
            self.service = None


def build_service(platform: Platform) -> EventService:
    """The event service over the configured log backend, not yet started."""
    from meshgate.app import load_pepper

    settings = platform.settings
    config = settings.events
    backend = open_event_log(
        config.url,
        data_dir=settings.data_dir,
        namespace=settings.namespace,
        poll_interval=config.poll_interval_seconds,
        duplicate_window_seconds=config.nats_duplicate_window_seconds,
        timeout=settings.backend_timeout_seconds,
    )
    pepper = load_pepper(settings)
    keys = DataKeys(
        platform.sql,
        Sealer(pepper, "user-data-keys"),
        derive(pepper, "user-pseudonyms"),
        cache_seconds=config.key_cache_seconds,
    )
    service = EventService(backend, keys)
    store = SubscriptionStore(platform.sql, Sealer(pepper, "webhook-secrets"))
    service.webhooks = WebhookDispatcher(service, store, config, egress=platform.egress)
    return service
