"""The economics service: the stores and the gate, built once at start."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
        self.gate = EconomicsGate(
            self.policies, self.prices, GuardrailReporter(platform.events, registry)
        )

    async def audit(
        self, actor: str, tenant: str, action: str, resource: str, details: dict[str, Any]
    ) -> None:
        if self.platform.audit is not None:
            await self.platform.audit.record(
                actor=actor, tenant=tenant, action=action, resource=resource, details=details
            )
