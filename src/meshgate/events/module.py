"""The event backbone's parts, built for the composition root: the log, the service, the
webhook dispatcher and the AMQP exchange publisher."""

from __future__ import annotations

from fastapi import APIRouter
from prometheus_client import CollectorRegistry, Gauge

from meshgate.config import Settings
from meshgate.events import routes, webhook_routes
from meshgate.events.amqp import AmqpPublisher
from meshgate.events.backends import open_event_log
from meshgate.events.crypto import DataKeys
from meshgate.events.leases import Leases
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


def build_amqp(
    settings: Settings,
    events: EventService,
    leases: Leases,
    *,
    registry: CollectorRegistry,
    lag: Gauge,
) -> AmqpPublisher | None:
    """The AMQP exchange publisher when ``events.amqp.url`` is set, not yet started."""
    config = settings.events.amqp
    if config.url is None:
        return None
    return AmqpPublisher(events, leases, config, registry=registry, lag=lag)
