"""The event backbone's parts, built for the composition root: the log, the service and the
webhook dispatcher."""

from __future__ import annotations

from fastapi import APIRouter

from meshgate.config import Settings
from meshgate.events import routes, webhook_routes
from meshgate.events.backends import open_event_log
from meshgate.events.crypto import DataKeys
from meshgate.events.outbox import EventOutbox
from meshgate.events.sealing import Sealer, derive
from meshgate.events.service import EventService
from meshgate.events.subscriptions import SubscriptionStore
from meshgate.events.webhooks import WebhookDispatcher
from meshgate.security.egress import EgressPolicy
from meshgate.sql import SqlStore

ROUTERS: list[APIRouter] = [routes.router, webhook_routes.router]


def build_events(settings: Settings, sql: SqlStore, pepper: bytes) -> EventService:
    """The event service over the configured log backend, not yet started."""
    config = settings.events
    backend = open_event_log(
        config.url,
        data_dir=settings.data_dir,
        namespace=settings.namespace,
        poll_interval=config.poll_interval_seconds,
        duplicate_window_seconds=config.nats_duplicate_window_seconds,
        timeout=settings.backend_timeout_seconds,
    )
    keys = DataKeys(
        sql,
        Sealer(pepper, "user-data-keys"),
        derive(pepper, "user-pseudonyms"),
        cache_seconds=config.key_cache_seconds,
    )
    return EventService(backend, keys, EventOutbox(sql))


def build_webhooks(
    settings: Settings, sql: SqlStore, pepper: bytes, events: EventService, egress: EgressPolicy
) -> WebhookDispatcher:
    store = SubscriptionStore(sql, Sealer(pepper, "webhook-secrets"))
    return WebhookDispatcher(events, store, settings.events, egress=egress)
