"""The economics service: the stores and the gate, built once at start."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from meshgate.economics.budgets import BudgetBook
from meshgate.economics.cache import open_cache
from meshgate.economics.counters import open_counters
from meshgate.economics.gate import EconomicsGate, GuardrailReporter
from meshgate.economics.policies import PolicyStore
from meshgate.economics.prices import PriceBook
from meshgate.economics.spend import SpendLedger

if TYPE_CHECKING:
    from meshgate.platform import Platform


class EconomicsService:
    def __init__(self, platform: Platform):
        self.platform = platform
        registry = platform.metrics.registry
        self.policies = PolicyStore(platform.sql)
        self.prices = PriceBook(platform.sql)
        self.spend = SpendLedger(platform.sql, registry)
        self.budgets = BudgetBook(platform.sql)
        self.counters = open_counters(
            platform.settings.limiter_backend_url, namespace=platform.settings.namespace
        )
        self.answers = open_cache(
            platform.settings.limiter_backend_url, namespace=platform.settings.namespace
        )
        self.gate = EconomicsGate(
            self.policies,
            self.prices,
            self.budgets,
            self.counters,
            self.answers,
            GuardrailReporter(platform.events, registry),
            platform.events,
        )

    async def close(self) -> None:
        await self.counters.close()
        await self.answers.close()

    async def audit(
        self, actor: str, tenant: str, action: str, resource: str, details: dict[str, Any]
    ) -> None:
        if self.platform.audit is not None:
            await self.platform.audit.record(
                actor=actor, tenant=tenant, action=action, resource=resource, details=details
            )
