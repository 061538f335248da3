"""Webhook delivery: signed, retried with backoff and jitter, dead-lettered.

Each subscription has its own task and its own consumer group (``webhook:<id>``) in the event
log, so a slow or dead receiver delays nobody else and nothing on the request path; after a
restart delivery resumes from the group's committed offset (at-least-once). When several
processes share one database, a lease in the SQL store lets one of them deliver each
subscription; another takes over within ``lease_seconds`` if it stops.

A delivery is ``POST <url>`` with the CloudEvent as ``application/cloudevents+json`` and:

- ``Meshgate-Webhook-Id``: the event's id (the same on every retry, for de-duplication),
- ``Meshgate-Webhook-Timestamp``: Unix seconds when this attempt was signed,
- ``Meshgate-Webhook-Signature``: ``v1=`` + hex HMAC-SHA256, keyed with the subscription's
  secret, of ``<timestamp>.<raw body>``.

A receiver recomputes the signature over the raw body, compares in constant time and refuses
timestamps older than a few minutes. Any 2xx is success; anything else, a timeout or a
connection error is retried. After ``webhook_max_attempts`` the event goes to the
subscription's dead letters (``GET /v1/subscriptions/{id}/dead-letters``) and delivery moves on.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import os
import random
import secrets
import socket
import time
from collections.abc import Awaitable, Callable

import aiohttp
import orjson

from meshgate.events.base import Filter
from meshgate.events.config import EventsConfig
from meshgate.events.envelope import Event
from meshgate.events.service import EventService, raise_if_cancelled
from meshgate.events.subscriptions import Subscription, SubscriptionStore, new_id
from meshgate.security.egress import EgressPolicy, guarded_connector
from meshgate.sql import InTransaction

log = logging.getLogger("meshgate.events.webhooks")
SIGNATURE_HEADER = "Meshgate-Webhook-Signature"
TIMESTAMP_HEADER = "Meshgate-Webhook-Timestamp"
ID_HEADER = "Meshgate-Webhook-Id"
Sleep = Callable[[float], Awaitable[None]]


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def backoff(attempt: int, base: float, cap: float) -> float:
    """Delay before retry ``attempt`` (1-based): exponential, capped, half of it jittered."""
    ceiling = min(cap, base * 2.0 ** (attempt - 1))
    return ceiling / 2 + random.uniform(0, ceiling / 2)


def group_of(sub_id: str) -> str:
    return f"webhook:{sub_id}"


class WebhookDispatcher:
    def __init__(
        self,
        events: EventService,
        store: SubscriptionStore,
        config: EventsConfig,
        *,
        refresh_seconds: float = 2.0,
        lease_seconds: float = 10.0,
        sleep: Sleep = asyncio.sleep,
        egress: EgressPolicy | None = None,
    ):
        self.events = events
        self.store = store
        self.config = config
        self.refresh_seconds = refresh_seconds
        self.lease_seconds = lease_seconds
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.sleep = sleep
        self.egress = egress or EgressPolicy([])
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._replays: set[asyncio.Task[None]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._watcher: asyncio.Task[None] | None = None
        self.delivered = 0

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=guarded_connector(self.egress),
            timeout=aiohttp.ClientTimeout(total=self.config.webhook_timeout_seconds),
        )
        self._watcher = asyncio.create_task(self._watch(), name="webhooks-watch")

    async def close(self) -> None:
        tasks = [t for t in (self._watcher, *self._tasks.values(), *self._replays) if t]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        # Hand the subscriptions over at once rather than after the lease runs out.
        with contextlib.suppress(Exception):
            await self.store.release(self.holder)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def subscribe(
        self,
        tenant: str,
        url: str,
        types: tuple[str, ...],
        secret: str,
        *,
        sub_id: str | None = None,
        then: InTransaction | None = None,
    ) -> Subscription:
        """A new subscription receives the events appended from now on; ``then`` runs last in
        the transaction that stores it (the audit record)."""
        await self.egress.check_url(url, "url")
        sub_id = sub_id or new_id()
        # Its offset is set before it exists, so no dispatcher can start it from the beginning.
        await self.events.log.seek(group_of(sub_id), await self.events.log.last_sequence())
        sub = await self.store.create(tenant, url, types, secret, sub_id=sub_id, then=then)
        await self.sync()
        return sub

    async def replay(self, sub: Subscription, *, after: int, until: int | None = None) -> None:
        """Deliver again the events after ``after`` (up to ``until`` when given).

        Without ``until`` the subscription is rewound: stop its task, move its offset back,
        start again. With ``until`` a separate task delivers just that range, and the
        subscription's own position does not move.
        """
        if until is not None:
            task = asyncio.create_task(
                self._deliver_range(sub, after, until), name=f"webhook-replay-{sub.id}"
            )
            self._replays.add(task)
            task.add_done_callback(self._replays.discard)
            return
        running = self._tasks.pop(sub.id, None)
        if running is not None:
            running.cancel()
            await asyncio.gather(running, return_exceptions=True)
        await self.events.replay(group_of(sub.id), after=after)
        await self.sync()

    async def sync(self) -> None:
        """Run a task per subscription this process holds the lease of; stop the others."""
        current = {s.id: s for s in await self.store.list()}
        for sub_id, sub in current.items():
            mine = await self.store.lease(sub_id, self.holder, self.lease_seconds)
            task = self._tasks.get(sub_id)
            if mine and (task is None or task.done()):
                self._tasks[sub_id] = asyncio.create_task(self._run(sub), name=f"webhook-{sub_id}")
            elif not mine and task is not None:
                self._tasks.pop(sub_id).cancel()
        for sub_id in list(self._tasks):
            if sub_id not in current:
                self._tasks.pop(sub_id).cancel()

    async def _watch(self) -> None:
        # Subscriptions made or deleted by another process show up here within a refresh.
        while True:
            try:
                await self.sync()
            except Exception:
                log.exception("could not refresh webhook subscriptions")
            await asyncio.sleep(self.refresh_seconds)

    async def _run(self, sub: Subscription) -> None:
        async def deliver(event: Event) -> None:
            await self._deliver(sub, event)

        while True:
            raise_if_cancelled()
            try:
                # Only the events the subscription wants are opened (their personal parts
                # decrypted); the group still moves past the others.
                await self.events.consume(
                    group_of(sub.id),
                    deliver,
                    where=Filter(tenant=sub.tenant),
                    wants=lambda record: sub.wants(record.type),
                )
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("webhook %s stopped; restarting", sub.id)
                await asyncio.sleep(1)

    async def _deliver_range(self, sub: Subscription, after: int, until: int) -> None:
        where = Filter(tenant=sub.tenant)
        while after < until:
            page = [r for r in await self.events.log.read(after, 100, where) if r.sequence <= until]
            if not page:
                return
            # Only the events the subscription wants are opened.
            for event in await self.events.open_records([r for r in page if sub.wants(r.type)]):
                await self._deliver(sub, event)
            after = page[-1].sequence

    async def _deliver(self, sub: Subscription, event: Event) -> None:
        body = orjson.dumps(event.to_cloudevent())
        error = ""
        attempts = self.config.webhook_max_attempts
        for attempt in range(1, attempts + 1):
            error = await self._attempt(sub, event, body)
            if not error:
                self.delivered += 1
                return
            if attempt < attempts:
                await self.sleep(
                    backoff(
                        attempt,
                        self.config.webhook_backoff_seconds,
                        self.config.webhook_backoff_max_seconds,
                    )
                )
        log.warning("webhook %s: event %s dead-lettered: %s", sub.id, event.sequence, error)
        await self.store.dead_letter(sub, event.sequence, body, attempts, error)

    async def _attempt(self, sub: Subscription, event: Event, body: bytes) -> str:
        """'' on success, else why the attempt failed (never the secret)."""
        assert self._session is not None
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/cloudevents+json",
            ID_HEADER: event.id,
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(sub.secret, timestamp, body),
        }
        try:
            async with self._session.post(sub.url, data=body, headers=headers) as response:
                with contextlib.suppress(Exception):
                    await response.read()
                if 200 <= response.status < 300:
                    return ""
                return f"HTTP {response.status}"
        except TimeoutError:
            return "timed out"
        except aiohttp.ClientError as exc:
            # The tenant sees that the connection failed; where and why (which may describe
            # the inside of the network) goes to the server's log only.
            log.warning("webhook %s: delivery to %s failed: %r", sub.id, sub.url, exc)
            return "connection failed"
