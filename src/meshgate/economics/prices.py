"""Prices per model version and the cost of one call.

A version's price comes from the registry (``PUT .../versions/{v}/price``) or, failing that,
from the defaults shipped in ``default_prices.json``, matched on the upstream model name (a
dated variant by its longest known prefix). A version without either is not priced: its
calls still count tokens, at no cost.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from importlib import resources
from typing import Any

import orjson
from pydantic import Field

from meshgate.core.singleflight import SingleFlight
from meshgate.models.registry import now
from meshgate.sql import InTransaction, Migration, SqlStore
from meshgate.strictjson import RequestBody

MIGRATIONS = [
    Migration(
        "economics.prices",
        1,
        """
        CREATE TABLE economics_prices (
            tenant TEXT NOT NULL,
            model TEXT NOT NULL,
            version TEXT NOT NULL,
            input_per_mtok DOUBLE PRECISION NOT NULL,
            output_per_mtok DOUBLE PRECISION NOT NULL,
            cached_input_per_mtok DOUBLE PRECISION,
            currency TEXT NOT NULL,
            updated_by TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (tenant, model, version)
        )
        """,
    )
]


class PriceSet(RequestBody):
    input_per_mtok: float = Field(ge=0, le=1_000_000, description="Per million input tokens.")
    output_per_mtok: float = Field(ge=0, le=1_000_000, description="Per million output tokens.")
    cached_input_per_mtok: float | None = Field(
        None, ge=0, le=1_000_000, description="Per million cached input tokens; default input's."
    )
    currency: str = Field("USD", pattern=r"^[A-Z]{3}$", description="ISO 4217 code.")


@dataclass(frozen=True, slots=True)
class Price:
    input: float
    output: float
    cached_input: float
    currency: str
    source: str

    def cost(self, input_tokens: int, output_tokens: int, cached_tokens: int = 0) -> float:
        fresh = max(input_tokens - cached_tokens, 0)
        total = fresh * self.input + cached_tokens * self.cached_input
        return (total + output_tokens * self.output) / 1_000_000

    def view(self) -> dict[str, Any]:
        return {
            "input_per_mtok": self.input,
            "output_per_mtok": self.output,
            "cached_input_per_mtok": self.cached_input,
            "currency": self.currency,
            "source": self.source,
        }


def _price(values: dict[str, Any], source: str) -> Price:
    cached = values.get("cached_input_per_mtok")
    return Price(
        float(values["input_per_mtok"]),
        float(values["output_per_mtok"]),
        float(values["input_per_mtok"] if cached is None else cached),
        str(values.get("currency") or "USD"),
        source,
    )


def load_defaults() -> dict[str, Price]:
    raw = resources.files("meshgate.economics").joinpath("default_prices.json").read_bytes()
    return {name: _price(v, "default") for name, v in orjson.loads(raw)["prices"].items()}


def default_for(defaults: dict[str, Price], upstream_model: str | None) -> Price | None:
    if not upstream_model:
        return None
    name = upstream_model.rsplit("/", 1)[-1].lower()
    found = defaults.get(name)
    if found is not None:
        return found
    prefixes = [p for p in defaults if name.startswith(p + "-")]
    return defaults[max(prefixes, key=len)] if prefixes else None


class PriceBook:
    """Registry prices cached in memory for ``refresh_seconds``, over the shipped defaults."""

    def __init__(self, sql: SqlStore, *, refresh_seconds: float = 1.0, limit: int = 10_000):
        self.sql = sql
        self.defaults = load_defaults()
        self.refresh_seconds = refresh_seconds
        self.limit = limit
        self._cache: dict[tuple[str, str, str], tuple[float, Price | None]] = {}
        self._loads: SingleFlight[tuple[str, str, str], Price | None] = SingleFlight()

    async def price(
        self, tenant: str, model: str, version: str, upstream_model: str | None
    ) -> Price | None:
        key = (tenant, model, version)
        cached = self._cache.get(key)
        if cached is not None and time.monotonic() - cached[0] < self.refresh_seconds:
            return cached[1]
        return await self._loads.load(key, lambda: self._load(key, upstream_model))

    async def _load(self, key: tuple[str, str, str], upstream_model: str | None) -> Price | None:
        row = await self.sql.fetch_one(
            "SELECT * FROM economics_prices WHERE tenant = ? AND model = ? AND version = ?", key
        )
        found = _price(row, "registry") if row else default_for(self.defaults, upstream_model)
        if len(self._cache) >= self.limit:
            self._cache.clear()
        self._cache[key] = (time.monotonic(), found)
        return found

    async def set(
        self,
        tenant: str,
        model: str,
        version: str,
        body: PriceSet,
        actor: str,
        *,
        then: InTransaction | None = None,
    ) -> Price:
        """Set a version's price; ``then`` runs last in its transaction (the audit record)."""
        values = body.model_dump()
        async with self.sql.transaction() as tx:
            await tx.execute(
                "INSERT INTO economics_prices (tenant, model, version, input_per_mtok,"
                " output_per_mtok, cached_input_per_mtok, currency, updated_by, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, model, version)"
                " DO UPDATE SET input_per_mtok = excluded.input_per_mtok,"
                " output_per_mtok = excluded.output_per_mtok,"
                " cached_input_per_mtok = excluded.cached_input_per_mtok,"
                " currency = excluded.currency, updated_by = excluded.updated_by,"
                " updated_at = excluded.updated_at",
                (
                    tenant,
                    model,
                    version,
                    values["input_per_mtok"],
                    values["output_per_mtok"],
                    values["cached_input_per_mtok"],
                    values["currency"],
                    actor,
                    now(),
                ),
            )
            if then is not None:
                await then(tx)
        self._cache.pop((tenant, model, version), None)
        self._loads.forget((tenant, model, version))
        return _price(values, "registry")
