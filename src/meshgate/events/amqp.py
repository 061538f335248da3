"""The AMQP exchange publisher: the cluster's events, as CloudEvents, on a RabbitMQ exchange.

For consumers that speak AMQP rather than HTTP (webhooks) or the log's own protocols. It is
the consumer group ``events.amqp`` run under a lease (:class:`LeasedGroup`): one process of
the cluster publishes, in log order, at-least-once. Each batch is published on a channel in
confirm mode and the group's offset is committed only once RabbitMQ confirmed every message of
it; a message confirmed but not committed (a crash, a handover) is published again, with the
same ``message_id`` (the event id) for the consumer to drop.

A message is the CloudEvents AMQP binding's structured mode: content type
``application/cloudevents+json``, the body the event as ``/v1/events`` shows it (personal
parts of an erased user read as erased), persistent, routing key the event type, the tenant
in the ``meshgate-tenant`` header. The exchange is declared as a durable topic exchange when
missing, so a consumer binds a queue with ``meshgate.prediction.#`` and the like.

RabbitMQ down or restarting: the batch in hand is retried with backoff, nothing is committed
meanwhile (nothing is lost), requests never wait on it and readiness ignores it (an optional
output). ``meshgate_event_lag_seconds{consumer="events.amqp"}`` grows while it is behind and
``meshgate_amqp_failures_total`` counts the failed attempts. The URL's credentials are never
logged: messages name the broker by scheme, host, port and virtual host only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from urllib.parse import urlsplit

import aio_pika
import orjson
from aio_pika.abc import AbstractConnection, AbstractExchange
from prometheus_client import CollectorRegistry, Counter, Gauge

from meshgate.events.base import EVERYTHING, Filter
from meshgate.events.config import AmqpConfig
from meshgate.events.envelope import Event, Record
from meshgate.events.groups import LeasedGroup
from meshgate.events.leases import Leases
from meshgate.events.service import EventService
from meshgate.events.webhooks import backoff

log = logging.getLogger("meshgate.events.amqp")
GROUP = "events.amqp"
CONTENT_TYPE = "application/cloudevents+json"
TENANT_HEADER = "meshgate-tenant"
Sleep = Callable[[float], Awaitable[None]]


def broker_name(url: str) -> str:
    """The broker as logs may name it: without user or password."""
    parts = urlsplit(url)
    host = parts.hostname or "localhost"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path or '/'}"


def wants_type(patterns: list[str], event_type: str) -> bool:
    """Exact types, or prefixes written ``a.b.*`` (as webhook subscriptions)."""
    return any(
        event_type.startswith(p[:-1]) if p.endswith("*") else event_type == p for p in patterns
    )


def message_of(event: Event, tenant: str) -> aio_pika.Message:
    """The event in the CloudEvents AMQP binding's structured mode."""
    return aio_pika.Message(
        orjson.dumps(event.to_cloudevent()),
        content_type=CONTENT_TYPE,
        content_encoding="utf-8",
        message_id=event.id,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        timestamp=event.time,
        type=event.type,
        app_id="meshgate",
        headers={TENANT_HEADER: tenant},
    )


class AmqpPublisher:
    def __init__(
        self,
        events: EventService,
        leases: Leases,
        config: AmqpConfig,
        *,
        registry: CollectorRegistry | None = None,
        lag: Gauge | None = None,
        lease_seconds: float = 10.0,
        sleep: Sleep = asyncio.sleep,
    ):
        if config.url is None:
            raise ValueError("events.amqp.url is not set")
        self.events = events
        self.config = config
        self._url = config.url.get_secret_value()
        self.broker = broker_name(self._url)
        self.sleep = sleep
        self.group = LeasedGroup(
            events,
            leases,
            GROUP,
            self.handle,
            where=_narrowest(config),
            lease_seconds=lease_seconds,
        )
        self._connection: AbstractConnection | None = None
        self._exchange: AbstractExchange | None = None
        self._lag = lag.labels(GROUP) if lag is not None else None
        self._published = Counter(
            "meshgate_amqp_published",
            "Events RabbitMQ confirmed to the AMQP exchange publisher of this process.",
            registry=registry,
        )
        self._failures = Counter(
            "meshgate_amqp_failures",
            "Failed attempts to publish a batch of events to the AMQP exchange (retried).",
            registry=registry,
        )
        self.published = 0
        """Events published and confirmed by this process."""

    @property
    def running(self) -> bool:
        """Whether this process is the cluster's publisher now."""
        return self.group.running

    async def start(self) -> None:
        # Nothing connects here: a broker that is down never holds the start-up.
        self.group.start()

    async def close(self) -> None:
        await self.group.close()
        await self._disconnect()

    def wants(self, record: Record) -> bool:
        tenants = self.config.tenants
        return (not tenants or record.tenant in tenants) and wants_type(
            self.config.types, record.type
        )

    async def handle(self, records: list[Record]) -> None:
        """Publish the batch and return once RabbitMQ confirmed all of it (the group then
        commits past it); retried with backoff until it is, however long that takes."""
        wanted = [r for r in records if self.wants(r)]
        if not wanted:
            return
        attempt = 0
        while True:
            # Opened on every attempt: a user erased during an outage reads as erased.
            events = await self.events.open_records(wanted)
            try:
                await self._publish(events, wanted)
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                attempt += 1
                self._failures.inc()
                self._set_lag(wanted[0])
                await self._disconnect()
                delay = backoff(
                    attempt, self.config.backoff_seconds, self.config.backoff_max_seconds
                )
                level = logging.WARNING if attempt == 1 or attempt % 10 == 0 else logging.DEBUG
                log.log(
                    level,
                    "AMQP publisher: %d events to %s failed (attempt %d, again in %.1fs): %s",
                    len(wanted),
                    self.broker,
                    attempt,
                    delay,
                    self._describe(exc),
                )
                await self.sleep(delay)
        self.published += len(events)
        self._published.inc(len(events))
        self._set_lag(wanted[-1])

    async def _publish(self, events: list[Event], records: list[Record]) -> None:
        exchange = await self._ready()
        batch = self.config.batch
        async with asyncio.timeout(self.config.timeout_seconds):
            for start in range(0, len(events), batch):
                # Started in log order, so the frames go out in log order (the channel takes
                # them under a FIFO lock); the confirms are awaited together.
                end = start + batch
                publishes = [
                    exchange.publish(message_of(e, r.tenant), routing_key=e.type, mandatory=False)
                    for e, r in zip(events[start:end], records[start:end], strict=True)
                ]
                results = await asyncio.gather(*publishes, return_exceptions=True)
                for result in results:
                    if isinstance(result, BaseException):
                        raise result

    async def _ready(self) -> AbstractExchange:
        connection = self._connection
        if self._exchange is not None and connection is not None and not connection.is_closed:
            return self._exchange
        await self._disconnect()
        timeout = self.config.timeout_seconds
        async with asyncio.timeout(timeout):
            connection = await aio_pika.connect(
                self._url,
                timeout=timeout,
                client_properties={"connection_name": f"meshgate {GROUP} {self.group.holder}"},
            )
            self._connection = connection
            channel = await connection.channel(publisher_confirms=True)
            self._exchange = await channel.declare_exchange(
                self.config.exchange, aio_pika.ExchangeType.TOPIC, durable=True
            )
        log.info(
            "AMQP publisher: publishing to exchange %r on %s", self.config.exchange, self.broker
        )
        return self._exchange

    async def _disconnect(self) -> None:
        connection, self._connection, self._exchange = self._connection, None, None
        if connection is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self.config.timeout_seconds):
                    await connection.close()

    def _set_lag(self, record: Record) -> None:
        if self._lag is None:
            return
        with contextlib.suppress(ValueError):
            sent = time.time() - _epoch(record.time)
            self._lag.set(max(0.0, sent))

    def _describe(self, exc: BaseException) -> str:
        # Driver messages censor the password; this makes sure of it.
        text = f"{type(exc).__name__}: {exc}".replace(self._url, self.broker)
        password = urlsplit(self._url).password
        return text.replace(password, "******") if password else text


def _narrowest(config: AmqpConfig) -> Filter:
    """What the log can filter on for the group (the rest is picked in ``wants``)."""
    tenant = config.tenants[0] if len(config.tenants) == 1 else None
    prefix = None
    if len(config.types) == 1 and config.types[0].endswith("*"):
        prefix = config.types[0][:-1]
    if tenant is None and prefix is None:
        return EVERYTHING
    return Filter(tenant=tenant, type_prefix=prefix)


def _epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
