"""The economics service: the stores and the gate, built once at start."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry

from meshgate.economics.budgets import BudgetBook, budget_prefix
from meshgate.economics.cache import holder, open_cache
from meshgate.economics.counters import open_counters
from meshgate.economics.gate import EconomicsGate, GuardrailReporter
from meshgate.economics.policies import PolicyStore
from meshgate.economics.prices import PriceBook
from meshgate.economics.semantic import open_index
from meshgate.economics.spend import SpendLedger
from meshgate.events.ports import EventPublisher, Pseudonyms
from meshgate.governance.ports import AuditRecorder, audited
from meshgate.sql import InTransaction, SqlStore


class EconomicsService:
    def __init__(
        self,
        sql: SqlStore,
        *,
        shared_url: str,
        namespace: str,
        registry: CollectorRegistry,
        events: EventPublisher,
        audit: AuditRecorder,
        pseudonyms: Pseudonyms,
    ):
        """``shared_url`` is where counters and cached answers live (the limiter's URL)."""
        self.audit_recorder = audit
        self.pseudonyms = pseudonyms
        self.policies = PolicyStore(sql)
        self.prices = PriceBook(sql)
        self.spend = SpendLedger(sql, registry)
        self.budgets = BudgetBook(sql)
        self.counters = open_counters(shared_url, namespace=namespace)
        self.answers = open_cache(shared_url, namespace=namespace)
        self.questions = open_index(shared_url, namespace=namespace)
        self.gate = EconomicsGate(
            self.policies,
            self.prices,
            self.budgets,
            self.counters,
            self.answers,
            self.questions,
            GuardrailReporter(events, registry),
            events,
        )

    async def erase_user(self, tenant: str, user_id: str, session_ids: Sequence[str]) -> int:
        """GDPR erasure: spend keeps its amounts without the user id; the user's budget and
        its counters go; answers cached for the user or their sessions are deleted."""
        changed = await self.spend.forget_user(tenant, user_id)
        if await self.budgets.delete(tenant, "user", user_id):
            changed += 1
        changed += await self.counters.forget(budget_prefix(tenant, "user", user_id))
        holders = [holder(tenant, "u", user_id), *(holder(tenant, "s", s) for s in session_ids)]
        answers = await self.answers.forget_holders(holders)
        for key in answers:
            partition, _, entry = key.partition(":")
            if entry:  # a semantic answer: its question goes too
                await self.questions.forget(partition, entry)
        return changed + len(answers)

    async def close(self) -> None:
        await self.counters.close()
        await self.answers.close()
        await self.questions.close()

    def audited_resource(self, tenant: str, scope: str, subject: str) -> str:
        """A budget as the audit trail names it: a user only by pseudonym, since the trail
        outlives an erasure."""
        if scope == "user":
            subject = "~" + self.pseudonyms.user_ref(tenant, subject)
        return f"budgets/{scope}/{subject}"

    def audited(
        self, actor: str, tenant: str, action: str, resource: str, details: dict[str, Any]
    ) -> InTransaction:
        """The audit record of a change, for the change's own transaction (a store's then=)."""
        return audited(
            self.audit_recorder,
            actor=actor,
            tenant=tenant,
            action=action,
            resource=resource,
            details=details,
        )
