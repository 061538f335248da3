"""Spend, aggregated from the log: a consumer of ``meshgate.prediction.made``.

Each prediction is one row, keyed by its event id, so handling an event twice (at-least-once
delivery, or the moment of a handover between two processes) counts it once. One process of
the cluster runs the consumer at a time, under a lease (``economics.module.SpendConsumer``).
An erased user's rows keep their amounts and lose the user id. Queries group the rows by
key, tenant, user or model over a time range. The Prometheus counter grows only by rows
actually added.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Literal

from prometheus_client import CollectorRegistry, Counter

from meshgate.events.catalogue import PREDICTION_MADE
from meshgate.events.envelope import Event
from meshgate.sql import Migration, SqlStore

log = logging.getLogger("meshgate.economics")
GROUP = "economics.spend"
GroupBy = Literal["key", "tenant", "user", "model"]
COLUMNS: dict[str, str] = {"key": "key_id", "tenant": "tenant", "user": "user_id", "model": "model"}

MIGRATIONS = [
    Migration(
        "economics.spend",
        1,
        """
        CREATE TABLE economics_spend (
            prediction_id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            key_id TEXT,
            user_id TEXT,
            model TEXT NOT NULL,
            version TEXT NOT NULL,
            at TEXT NOT NULL,
            input_tokens BIGINT NOT NULL,
            output_tokens BIGINT NOT NULL,
            cached_tokens BIGINT NOT NULL,
            amount DOUBLE PRECISION NOT NULL,
            currency TEXT,
            cache_hit INTEGER NOT NULL
        );
        CREATE INDEX economics_spend_by_time ON economics_spend (tenant, at)
        """,
    )
]


class SpendLedger:
    def __init__(self, sql: SqlStore, registry: CollectorRegistry):
        self.sql = sql
        self.spent = Counter(
            "meshgate_spend",
            "Money spent on model calls, from the log, by tenant, model and currency.",
            ["tenant", "model", "currency"],
            registry=registry,
        )
        self.tokens = Counter(
            "meshgate_spend_tokens",
            "Tokens of model calls, from the log, by tenant, model and kind.",
            ["tenant", "model", "kind"],
            registry=registry,
        )
        # labels() builds and looks up its key on every call: the children of a tenant and
        # model are looked up once (bounded, as a deleted model's labels may churn).
        self._children: dict[tuple[str, str, str | None], tuple[Any, ...]] = {}

    async def handle(self, event: Event) -> None:
        await self.handle_many([event])

    async def handle_many(self, events: Sequence[Event]) -> None:
        """A row per counted event: one statement per chunk of rows, in one transaction."""
        # By id: an event handled twice in one batch is one row (and counted once).
        rows = list({e.id: _row(e) for e in events if counted(e.type, e.data)}.values())
        if not rows:
            return
        added: set[str] = set()
        async with self.sql.transaction() as tx:
            for start in range(0, len(rows), INSERT_CHUNK):
                chunk = rows[start : start + INSERT_CHUNK]
                stored = await tx.fetch_all(
                    INSERT.format(values=", ".join([ROW_MARKS] * len(chunk))),
                    [value for row in chunk for value in row],
                )
                added.update(r["prediction_id"] for r in stored)
        for row in rows:
            if row[0] not in added:
                continue
            spent, input_tokens, output_tokens, cached_tokens = self._counters(
                row[1], row[4], row[11]
            )
            if spent is not None:
                spent.inc(row[10])
            input_tokens.inc(row[7])
            output_tokens.inc(row[8])
            cached_tokens.inc(row[9])

    def _counters(self, tenant: str, model: str, currency: str | None) -> tuple[Any, ...]:
        key = (tenant, model, currency)
        found = self._children.get(key)
        if found is None:
            if len(self._children) >= 10_000:
                self._children.clear()
            found = self._children[key] = (
                self.spent.labels(tenant, model, currency) if currency else None,
                *(
                    self.tokens.labels(tenant, model, kind)
                    for kind in ("input", "output", "cached")
                ),
            )
        return found

    async def forget_user(self, tenant: str, user_id: str) -> int:
        """Erasure: the user's rows keep their amounts (the tenant's cost) and lose the user
        id; they then count under no user, like calls that named none. Returns the rows."""
        return await self.sql.execute(
            "UPDATE economics_spend SET user_id = NULL WHERE tenant = ? AND user_id = ?",
            (tenant, user_id),
        )

    async def unname(self, prediction_ids: list[str]) -> None:
        """Rows whose user was erased while they were being written lose the user id too."""
        for start in range(0, len(prediction_ids), 200):
            chunk = prediction_ids[start : start + 200]
            marks = ", ".join("?" * len(chunk))
            await self.sql.execute(
                f"UPDATE economics_spend SET user_id = NULL WHERE prediction_id IN ({marks})",
                chunk,
            )

    async def report(
        self, *, tenant: str | None, group_by: GroupBy, since: str | None, until: str | None
    ) -> list[dict[str, Any]]:
        column = COLUMNS[group_by]
        where, params = ["1 = 1"], []
        if tenant is not None:
            where.append("tenant = ?")
            params.append(tenant)
        if since is not None:
            where.append("at >= ?")
            params.append(since)
        if until is not None:
            where.append("at < ?")
            params.append(until)
        rows = await self.sql.fetch_all(
            f"SELECT {column} AS grp, currency, COUNT(*) AS requests,"
            " SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens,"
            " SUM(cached_tokens) AS cached_tokens, SUM(amount) AS amount,"
            " SUM(cache_hit) AS cache_hits FROM economics_spend"
            f" WHERE {' AND '.join(where)} GROUP BY {column}, currency ORDER BY {column}, currency",
            params,
        )
        return [
            {
                group_by: r["grp"],
                "currency": r["currency"],
                "amount": round(float(r["amount"] or 0), 10),
                "requests": int(r["requests"]),
                "input_tokens": int(r["input_tokens"] or 0),
                "output_tokens": int(r["output_tokens"] or 0),
                "cached_tokens": int(r["cached_tokens"] or 0),
                "cache_hits": int(r["cache_hits"] or 0),
            }
            for r in rows
        ]


def stamp(moment: datetime) -> str:
    """One sortable text form for stored times and query bounds alike."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# Rows already there (an event handled again) are skipped; RETURNING names the rows added.
INSERT = (
    "INSERT INTO economics_spend (prediction_id, tenant, key_id, user_id, model, version,"
    " at, input_tokens, output_tokens, cached_tokens, amount, currency, cache_hit)"
    " VALUES {values} ON CONFLICT (prediction_id) DO NOTHING RETURNING prediction_id"
)
ROW_MARKS = "(" + ", ".join(["?"] * 13) + ")"
INSERT_CHUNK = 200


def counted(event_type: str, data: Any) -> bool:
    """Whether an event makes a spend row: a prediction, not a shadow call, with its usage or
    served from the cache. Read from the clear part alone, so a consumer opens (decrypts)
    only the events that count."""
    if event_type != PREDICTION_MADE.name or not isinstance(data, dict) or data.get("shadow"):
        return False
    return isinstance(data.get("usage"), dict) or data.get("cache") == "hit"


def _row(event: Event) -> tuple[Any, ...]:
    data = event.data
    usage = data.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    cost = data.get("cost")
    cost = cost if isinstance(cost, dict) else {}
    return (
        event.id,
        event.tenant,
        data.get("key_id"),
        user_of(event),
        str(data.get("model")),
        str(data.get("version")),
        stamp(event.time),
        int(usage.get("input_tokens") or 0),
        int(usage.get("output_tokens") or 0),
        int(usage.get("cached_tokens") or 0),
        float(cost.get("amount") or 0.0),
        cost.get("currency"),
        1 if data.get("cache") == "hit" else 0,
    )


def user_of(event: Event) -> str | None:
    """The user id in the event's personal part; None when there is none or it was erased."""
    personal = event.personal if isinstance(event.personal, dict) else {}
    user = personal.get("user_id")
    return user if isinstance(user, str) else None
