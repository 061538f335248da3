"""Budgets per key, tenant and user, per day or month (UTC), in the platform's SQL store.

A hard budget refuses calls once its running total reached the amount (402, OpenAI's
``insufficient_quota`` on the OpenAI routes); the soft level (a fraction of the amount)
fires ``meshgate.budget.threshold_reached`` once per period.

A budget has a currency (ISO 4217, USD unless set), and amounts in two currencies are never
added: a call priced in another currency than a hard budget it falls under is refused (409,
``budget_currency_mismatch``) before the upstream; a soft-only budget in another currency is
left out of the call (it alerts only on costs in its own currency). Unpriced calls cost
nothing in any currency.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

from pydantic import Field

from meshgate.core.singleflight import SingleFlight
from meshgate.economics.counters import Line
from meshgate.errors import Conflict, MeshgateError
from meshgate.models.registry import now
from meshgate.sql import InTransaction, Migration, SqlStore
from meshgate.strictjson import RequestBody

Scope = Literal["key", "tenant", "user"]

MIGRATIONS = [
    Migration(
        "economics.budgets",
        1,
        """
        CREATE TABLE economics_budgets (
            tenant TEXT NOT NULL,
            scope TEXT NOT NULL,
            subject TEXT NOT NULL,
            amount DOUBLE PRECISION NOT NULL,
            period TEXT NOT NULL,
            soft_at DOUBLE PRECISION NOT NULL,
            hard INTEGER NOT NULL,
            updated_by TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (tenant, scope, subject)
        )
        """,
    ),
    Migration(
        "economics.budgets",
        2,
        "ALTER TABLE economics_budgets ADD COLUMN currency TEXT NOT NULL DEFAULT 'USD'",
    ),
]


class BudgetExceeded(MeshgateError):
    status, title, slug = 402, "Budget exceeded", "budget-exceeded"


class BudgetCurrencyMismatch(Conflict):
    """The call is priced in another currency than a hard budget it falls under."""

    title, slug = "Budget in another currency", "budget-currency-mismatch"


class BudgetSet(RequestBody):
    amount: float = Field(ge=0, le=1e12, description="Most to spend per period.")
    period: Literal["day", "month"] = Field("month", description="Calendar day or month, UTC.")
    soft_at: float = Field(0.8, ge=0, le=1, description="Fraction of the amount that alerts.")
    hard: bool = Field(True, description="Refuse calls once the amount is reached.")
    currency: str = Field(
        "USD",
        pattern=r"^[A-Z]{3}$",
        description="ISO 4217 code of the amount. Only costs priced in this currency count; a"
        " call priced in another currency is refused by a hard budget (409"
        " budget_currency_mismatch), and left out of a soft-only one: amounts in two"
        " currencies are never added.",
    )


@dataclass(frozen=True, slots=True)
class Budget:
    tenant: str
    scope: str
    subject: str
    amount: float
    period: str
    soft_at: float
    hard: bool
    currency: str = "USD"

    def line(self, at: datetime) -> Line:
        start, end = period_bounds(self.period, at)
        label = start.strftime("%Y-%m-%d" if self.period == "day" else "%Y-%m")
        # The currency in the key: a budget set again in another currency starts from zero
        # rather than adding its amounts to the old ones.
        key = budget_prefix(self.tenant, self.scope, self.subject) + f"{self.currency}:{label}"
        ttl = int((end - at).total_seconds()) + 86_400
        return Line(key, self.amount, self.amount * self.soft_at, self.hard, ttl)

    def view(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "id": self.subject,
            "amount": self.amount,
            "period": self.period,
            "soft_at": self.soft_at,
            "hard": self.hard,
            "currency": self.currency,
        }


def budget_prefix(tenant: str, scope: str, subject: str) -> str:
    """A budget's counter key up to the period's label."""
    # The tenant as hash tag: every counter of one call lives in one Redis Cluster slot.
    return f"{{{tenant}}}:{scope}:{subject}:"


def period_bounds(period: str, at: datetime) -> tuple[datetime, datetime]:
    if period == "day":
        start = at.replace(hour=0, minute=0, second=0, microsecond=0)
        return start, start + timedelta(days=1)
    start = at.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    nxt = (start + timedelta(days=32)).replace(day=1)
    return start, nxt


class BudgetBook:
    """Every budget of a tenant, cached for ``refresh_seconds``."""

    RANK: ClassVar[dict[str, int]] = {"key": 0, "user": 1, "tenant": 2}

    def __init__(self, sql: SqlStore, *, refresh_seconds: float = 1.0):
        self.sql = sql
        self.refresh_seconds = refresh_seconds
        self._cache: dict[str, tuple[float, dict[tuple[str, str], Budget]]] = {}
        self._loads: SingleFlight[str, dict[tuple[str, str], Budget]] = SingleFlight()

    async def of_tenant(self, tenant: str) -> dict[tuple[str, str], Budget]:
        cached = self._cache.get(tenant)
        if cached is not None and time.monotonic() - cached[0] < self.refresh_seconds:
            return cached[1]
        return await self._loads.load(tenant, lambda: self._load(tenant))

    async def _load(self, tenant: str) -> dict[tuple[str, str], Budget]:
        rows = await self.sql.fetch_all(
            "SELECT * FROM economics_budgets WHERE tenant = ?", (tenant,)
        )
        budgets = {(r["scope"], r["subject"]): _budget(r) for r in rows}
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[tenant] = (time.monotonic(), budgets)
        return budgets

    async def applying(self, tenant: str, key_id: str, user_id: str | None) -> list[Budget]:
        budgets = await self.of_tenant(tenant)
        if not budgets:
            return []
        wanted = [("key", key_id), ("tenant", tenant)] + ([("user", user_id)] if user_id else [])
        return [budgets[w] for w in wanted if w in budgets]

    async def get(self, tenant: str, scope: str, subject: str) -> Budget | None:
        row = await self.sql.fetch_one(
            "SELECT * FROM economics_budgets WHERE tenant = ? AND scope = ? AND subject = ?",
            (tenant, scope, subject),
        )
        return _budget(row) if row else None

    async def put(
        self,
        tenant: str,
        scope: str,
        subject: str,
        body: BudgetSet,
        actor: str,
        *,
        then: InTransaction | None = None,
    ) -> Budget:
        """Set a budget; ``then`` runs last in its transaction (the audit record)."""
        async with self.sql.transaction() as tx:
            await tx.execute(
                "INSERT INTO economics_budgets (tenant, scope, subject, amount, period, soft_at,"
                " hard, currency, updated_by, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (tenant, scope, subject) DO UPDATE SET amount = excluded.amount,"
                " period = excluded.period, soft_at = excluded.soft_at, hard = excluded.hard,"
                " currency = excluded.currency, updated_by = excluded.updated_by,"
                " updated_at = excluded.updated_at",
                (tenant, scope, subject, body.amount, body.period, body.soft_at, int(body.hard),
                 body.currency, actor, now()),
            )  # fmt: skip
            if then is not None:
                await then(tx)
        self._cache.pop(tenant, None)
        self._loads.forget(tenant)
        return Budget(
            tenant,
            scope,
            subject,
            body.amount,
            body.period,
            body.soft_at,
            body.hard,
            body.currency,
        )

    async def delete(
        self, tenant: str, scope: str, subject: str, *, then: InTransaction | None = None
    ) -> bool:
        """Lift a budget; ``then`` runs last in the transaction when there was one."""
        async with self.sql.transaction() as tx:
            removed = await tx.execute(
                "DELETE FROM economics_budgets WHERE tenant = ? AND scope = ? AND subject = ?",
                (tenant, scope, subject),
            )
            if removed and then is not None:
                await then(tx)
        self._cache.pop(tenant, None)
        self._loads.forget(tenant)
        return bool(removed)


def _budget(row: dict[str, Any]) -> Budget:
    return Budget(
        row["tenant"],
        row["scope"],
        row["subject"],
        float(row["amount"]),
        row["period"],
        float(row["soft_at"]),
        bool(row["hard"]),
        row["currency"],
    )


def utc_now() -> datetime:
    return datetime.now(UTC)
