"""Per-model economics policies in the platform's SQL store: guardrails and the cache.

The hot path reads a compiled policy from memory; an entry older than ``refresh_seconds`` is
read again, so a change made through another process is in effect within that time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

from meshgate.core.singleflight import SingleFlight
from meshgate.economics.cache import CacheSet
from meshgate.economics.guardrails import GuardrailsSet, Pipeline
from meshgate.models.registry import now
from meshgate.sql import InTransaction, Migration, SqlStore

MIGRATIONS = [
    Migration(
        "economics",
        1,
        """
        CREATE TABLE economics_model_policies (
            tenant TEXT NOT NULL,
            model TEXT NOT NULL,
            guardrails TEXT,
            updated_by TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (tenant, model)
        )
        """,
    ),
    Migration("economics", 2, "ALTER TABLE economics_model_policies ADD COLUMN cache TEXT"),
]


@dataclass(frozen=True, slots=True)
class ModelPolicy:
    guardrails: Pipeline
    cache: CacheSet | None
    loaded_at: float


EMPTY = Pipeline([])


class PolicyStore:
    def __init__(self, sql: SqlStore, *, refresh_seconds: float = 1.0, limit: int = 10_000):
        self.sql = sql
        self.refresh_seconds = refresh_seconds
        self.limit = limit
        self._cache: dict[tuple[str, str], ModelPolicy] = {}
        self._loads: SingleFlight[tuple[str, str], ModelPolicy] = SingleFlight()

    async def policy(self, tenant: str, model: str) -> ModelPolicy:
        found = self._cache.get((tenant, model))
        if found is not None and time.monotonic() - found.loaded_at < self.refresh_seconds:
            return found
        return await self._loads.load((tenant, model), lambda: self._load(tenant, model))

    async def _load(self, tenant: str, model: str) -> ModelPolicy:
        row = await self.sql.fetch_one(
            "SELECT guardrails, cache FROM economics_model_policies WHERE tenant = ? AND model = ?",
            (tenant, model),
        )
        cache = _json(row, "cache")
        checks = GuardrailsSet.model_validate({"guardrails": _json(row, "guardrails") or []})
        pipeline = Pipeline(checks.guardrails) if checks.guardrails else EMPTY
        if len(self._cache) >= self.limit:
            self._cache.clear()
        caching = CacheSet.model_validate(cache) if cache and cache["mode"] != "off" else None
        policy = self._cache[(tenant, model)] = ModelPolicy(pipeline, caching, time.monotonic())
        return policy

    async def guardrails(self, tenant: str, model: str) -> list[dict[str, Any]]:
        row = await self.sql.fetch_one(
            "SELECT guardrails FROM economics_model_policies WHERE tenant = ? AND model = ?",
            (tenant, model),
        )
        return _json(row, "guardrails") or []

    async def set_guardrails(
        self,
        tenant: str,
        model: str,
        checks: GuardrailsSet,
        actor: str,
        *,
        then: InTransaction | None = None,
    ) -> list[dict[str, Any]]:
        """Replace the pipeline; ``then`` runs last in its transaction (the audit record)."""
        stored = stored_guardrails(checks)
        async with self.sql.transaction() as tx:
            await tx.execute(
                "INSERT INTO economics_model_policies (tenant, model, guardrails, updated_by,"
                " updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant, model) DO UPDATE SET"
                " guardrails = excluded.guardrails, updated_by = excluded.updated_by,"
                " updated_at = excluded.updated_at",
                (tenant, model, orjson.dumps(stored).decode(), actor, now()),
            )
            if then is not None:
                await then(tx)
        self._cache.pop((tenant, model), None)
        self._loads.forget((tenant, model))
        return stored

    async def cache_policy(self, tenant: str, model: str) -> dict[str, Any]:
        row = await self.sql.fetch_one(
            "SELECT cache FROM economics_model_policies WHERE tenant = ? AND model = ?",
            (tenant, model),
        )
        return _json(row, "cache") or {"mode": "off", "ttl_seconds": 300}

    async def set_cache(
        self,
        tenant: str,
        model: str,
        body: CacheSet,
        actor: str,
        *,
        then: InTransaction | None = None,
    ) -> dict[str, Any]:
        """Set the cache policy; ``then`` runs last in its transaction (the audit record)."""
        stored = body.model_dump()
        async with self.sql.transaction() as tx:
            await tx.execute(
                "INSERT INTO economics_model_policies (tenant, model, cache, updated_by,"
                " updated_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant, model) DO UPDATE SET"
                " cache = excluded.cache, updated_by = excluded.updated_by,"
                " updated_at = excluded.updated_at",
                (tenant, model, orjson.dumps(stored).decode(), actor, now()),
            )
            if then is not None:
                await then(tx)
        self._cache.pop((tenant, model), None)
        self._loads.forget((tenant, model))
        return stored


def stored_guardrails(checks: GuardrailsSet) -> list[dict[str, Any]]:
    """The pipeline as it is stored, answered and audited."""
    stored: list[dict[str, Any]] = checks.model_dump(by_alias=True)["guardrails"]
    return stored


def _json(row: dict[str, Any] | None, column: str) -> Any:
    if row is None or row[column] is None:
        return None
    return orjson.loads(row[column])
