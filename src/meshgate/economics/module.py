"""Cost and safety at the gateway, built for the composition root: model allow-lists and
limits, prices and spend, budgets, the response cache and guardrails."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter

from meshgate.config import Settings
from meshgate.economics import spend
from meshgate.economics.routes import routers
from meshgate.economics.service import EconomicsService
from meshgate.events.ports import EventPublisher
from meshgate.events.service import EventService
from meshgate.governance.ports import AuditRecorder
from meshgate.monitoring.metrics import Metrics
from meshgate.sql import SqlStore

ROUTERS: list[APIRouter] = routers()


def build_economics(
    settings: Settings,
    sql: SqlStore,
    metrics: Metrics,
    *,
    events: EventPublisher,
    audit: AuditRecorder,
) -> EconomicsService:
    return EconomicsService(
        sql,
        shared_url=settings.limiter_backend_url,
        namespace=settings.namespace,
        registry=metrics.registry,
        events=events,
        audit=audit,
    )


class SpendConsumer:
    """The spend ledger fed from the log as a consumer group."""

    def __init__(self, events: EventService, ledger: spend.SpendLedger):
        self.events = events
        self.ledger = ledger
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # Wants one runner per cluster: the ledger is idempotent meanwhile, so a second
        # process running it wastes work but never counts twice.
        self._task = asyncio.create_task(
            spend.run_consumer(self.events, self.ledger), name="economics-spend"
        )

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
