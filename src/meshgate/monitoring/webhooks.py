"""Alert webhooks: each fired or resolved alert POSTed to every configured URL, signed.

The signature scheme is the event backbone's (``meshgate.events.webhooks``), so one receiver
verifies both: the body is the alert's CloudEvent (``application/cloudevents+json``) and the
headers are

- ``Meshgate-Webhook-Id``: the event id (the same on every retry, for de-duplication),
- ``Meshgate-Webhook-Timestamp``: Unix seconds when this attempt was signed,
- ``Meshgate-Webhook-Signature``: ``v1=`` + hex HMAC-SHA256, keyed with the webhook's secret,
  of ``<timestamp>.<raw body>``.

Deliveries run as background tasks, retried with exponential backoff and jitter; a receiver
that is down delays nothing but its own deliveries.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson

from meshgate.events.webhooks import ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, backoff, sign
from meshgate.monitoring.config import AlertConfig, WebhookConfig

log = logging.getLogger("meshgate.monitoring.webhooks")
Sleep = Callable[[float], Awaitable[None]]
BACKOFF_BASE, BACKOFF_CAP = 0.5, 30.0
CLOSE_GRACE_SECONDS = 2.0


def verify(secret: str, timestamp: int, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


class AlertWebhooks:
    def __init__(self, config: AlertConfig, *, sleep: Sleep = asyncio.sleep):
        self.config = config
        self.sleep = sleep
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.delivered = 0
        self.failed = 0

    def send(self, event_id: str, cloudevent: dict[str, Any]) -> None:
        """Start delivering to every webhook; returns at once."""
        body = orjson.dumps(cloudevent)
        for hook in self.config.webhooks:
            task = asyncio.create_task(self._deliver(hook, event_id, body))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _deliver(self, hook: WebhookConfig, event_id: str, body: bytes) -> None:
        if self._session is None:
            timeout = aiohttp.ClientTimeout(total=self.config.webhook_timeout_seconds)
            self._session = aiohttp.ClientSession(timeout=timeout)
        secret = hook.secret.get_secret_value()
        for attempt in range(1, self.config.webhook_attempts + 1):
            timestamp = int(time.time())
            headers = {
                "content-type": "application/cloudevents+json",
                ID_HEADER: event_id,
                TIMESTAMP_HEADER: str(timestamp),
                SIGNATURE_HEADER: sign(secret, timestamp, body),
            }
            try:
                async with self._session.post(hook.url, data=body, headers=headers) as response:
                    if 200 <= response.status < 300:
                        self.delivered += 1
                        return
                    reason = f"HTTP {response.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                reason = type(exc).__name__
            if attempt < self.config.webhook_attempts:
                await self.sleep(backoff(attempt, BACKOFF_BASE, BACKOFF_CAP))
        self.failed += 1
        # The URL may carry a token in its query; log only where it points.
        log.warning("alert webhook to %s failed: %s", hook.url.split("?", 1)[0], reason)

    async def drain(self) -> None:
        """Wait for deliveries in flight (tests, shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        # A stopping node finishes sending the alert it has just fired (nothing else sends
        # it again), within a bound that fits the deployment's shutdown grace.
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=CLOSE_GRACE_SECONDS)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
        if self._session is not None:
            await self._session.close()
            self._session = None
