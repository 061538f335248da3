"""Cost and safety at the gateway as a module of the platform: model allow-lists and limits,
prices and spend, budgets, the response cache and guardrails."""

from __future__ import annotations

import asyncio
import contextlib

from fastapi import APIRouter

from meshgate.economics import budgets, policies, prices, spend
from meshgate.economics.service import EconomicsService
from meshgate.platform import Platform
from meshgate.sql import Migration


class EconomicsModule:
    """Starts after the model services: it puts its gate in their chat flow."""

    name = "economics"
    migrations: list[Migration] = (
        policies.MIGRATIONS + prices.MIGRATIONS + spend.MIGRATIONS + budgets.MIGRATIONS
    )

    def __init__(self) -> None:
        self._consumer: asyncio.Task[None] | None = None
        self._service: EconomicsService | None = None

    def routers(self) -> list[APIRouter]:
        from meshgate.economics.routes import routers

        return routers()

    async def start(self, platform: Platform) -> None:
        service = self._service = EconomicsService(platform)
        if platform.models is not None:
            platform.models.inference.gate = service.gate
        platform.economics = service
        if platform.events is not None:
            # Wants one runner per cluster: the ledger is idempotent meanwhile, so a second
            # process running it wastes work but never counts twice.
            self._consumer = asyncio.create_task(
                spend.run_consumer(platform.events, service.spend), name="economics-spend"
            )

    async def close(self) -> None:
        if self._consumer is not None:
            self._consumer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._consumer
            self._consumer = None
        if self._service is not None:
            await self._service.close()
