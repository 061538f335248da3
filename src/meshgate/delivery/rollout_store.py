"""Rollouts in the SQL store, shared by every node: a restarted controller, or the node that
takes its lease over, continues from the state written here.

Every change is a compare-and-set on ``revision``, so a manual abort on one node and the
controller's decision on another cannot both win. ``applied`` is the revision whose traffic
the registry holds: a change whose traffic could not be set yet is set again until it is.
``active`` is 1 while the rollout runs and NULL after; a unique index on
(tenant, model, active) lets one rollout run per model, in every dialect.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from meshgate.delivery.rollout_spec import RUNNING, RolloutCreate
from meshgate.errors import Conflict
from meshgate.sql import InTransaction, Migration, SqlStore

MIGRATIONS = [
    Migration(
        "delivery.rollouts",
        1,
        """
        CREATE TABLE delivery_rollouts (
            id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            model TEXT NOT NULL,
            spec TEXT NOT NULL,
            state TEXT NOT NULL,
            phase TEXT NOT NULL,
            step INTEGER NOT NULL,
            weight INTEGER NOT NULL,
            step_base INTEGER NOT NULL,
            start_sequence BIGINT NOT NULL,
            previous TEXT NOT NULL,
            history TEXT NOT NULL,
            figures TEXT NOT NULL,
            reason TEXT NOT NULL,
            revision INTEGER NOT NULL,
            applied INTEGER NOT NULL,
            active INTEGER,
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            evaluated_at TEXT
        );
        CREATE UNIQUE INDEX delivery_rollouts_one_running ON delivery_rollouts
            (tenant, model, active);
        CREATE INDEX delivery_rollouts_by_model ON delivery_rollouts (tenant, model, created_at)
        """,
    )
]


@dataclass(frozen=True)
class Rollout:
    id: str
    tenant: str
    model: str
    spec: RolloutCreate
    state: str
    phase: str
    """``shadow`` (copies only), ``canary`` (a share of live traffic) or ``switched``
    (blue-green: all traffic on the candidate, the baseline shadowing it)."""
    step: int
    """Index into ``spec.steps`` (-1 before the first step)."""
    weight: int
    """The candidate's share of live traffic now, in percent."""
    step_base: int
    """The candidate's calls counted when this step began."""
    start_sequence: int
    """The event log's position when the rollout began: its window starts after it."""
    previous: dict[str, Any]
    """The traffic policy and aliases before the rollout, restored on a rollback."""
    history: list[dict[str, Any]] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    revision: int = 1
    applied: int = 0
    created_by: str = ""
    created_at: str = ""
    updated_at: str = ""
    evaluated_at: str | None = None

    @property
    def running(self) -> bool:
        return self.state in RUNNING

    def view(self) -> dict[str, Any]:
        spec = self.spec.model_dump()
        return {
            "id": self.id,
            "model": self.model,
            **spec,
            "state": self.state,
            "phase": self.phase,
            "step": self.step,
            "current_step": self.spec.steps[self.step] if self.step >= 0 else None,
            "weight": self.weight,
            "traffic_applied": self.applied >= self.revision,
            "reason": self.reason,
            "figures": self.figures,
            "steps_analysis": self.history,
            "created_by": self.created_by,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "evaluated_at": self.evaluated_at,
        }


def _row(r: dict[str, Any]) -> Rollout:
    return Rollout(
        id=r["id"],
        tenant=r["tenant"],
        model=r["model"],
        spec=RolloutCreate.model_validate_json(r["spec"]),
        state=r["state"],
        phase=r["phase"],
        step=int(r["step"]),
        weight=int(r["weight"]),
        step_base=int(r["step_base"]),
        start_sequence=int(r["start_sequence"]),
        previous=orjson.loads(r["previous"]),
        history=orjson.loads(r["history"]),
        figures=orjson.loads(r["figures"]),
        reason=r["reason"],
        revision=int(r["revision"]),
        applied=int(r["applied"]),
        created_by=r["created_by"],
        created_at=r["created_at"],
        updated_at=r["updated_at"],
        evaluated_at=r["evaluated_at"],
    )


class RolloutStore:
    def __init__(self, sql: SqlStore):
        self.sql = sql

    async def insert(self, rollout: Rollout) -> bool:
        """False when another rollout of the model is running (nothing is written)."""
        try:
            return await self._insert(rollout)
        except Conflict:  # another node inserted one at the same moment: the index refused
            return False

    async def _insert(self, rollout: Rollout) -> bool:
        async with self.sql.transaction() as tx:
            running = await tx.fetch_one(
                "SELECT id FROM delivery_rollouts WHERE tenant = ? AND model = ? AND active = 1",
                (rollout.tenant, rollout.model),
            )
            if running is not None:
                return False
            await tx.execute(
                "INSERT INTO delivery_rollouts (id, tenant, model, spec, state, phase, step,"
                " weight, step_base, start_sequence, previous, history, figures, reason,"
                " revision, applied, active, created_by, created_at, updated_at, evaluated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    rollout.id,
                    rollout.tenant,
                    rollout.model,
                    rollout.spec.model_dump_json(),
                    rollout.state,
                    rollout.phase,
                    rollout.step,
                    rollout.weight,
                    rollout.step_base,
                    rollout.start_sequence,
                    _json(rollout.previous),
                    _json(rollout.history),
                    _json(rollout.figures),
                    rollout.reason,
                    rollout.revision,
                    rollout.applied,
                    1,
                    rollout.created_by,
                    rollout.created_at,
                    rollout.updated_at,
                    rollout.evaluated_at,
                ),
            )
        return True

    async def get(self, tenant: str, model: str, rollout_id: str) -> Rollout | None:
        row = await self.sql.fetch_one(
            "SELECT * FROM delivery_rollouts WHERE tenant = ? AND model = ? AND id = ?",
            (tenant, model, rollout_id),
        )
        return None if row is None else _row(row)

    async def running_id(self, tenant: str, model: str) -> str | None:
        """The id of the model's running rollout (pending, progressing or paused), if any."""
        row = await self.sql.fetch_one(
            "SELECT id FROM delivery_rollouts WHERE tenant = ? AND model = ? AND active = 1",
            (tenant, model),
        )
        return None if row is None else str(row["id"])

    async def by_id(self, rollout_id: str) -> Rollout | None:
        row = await self.sql.fetch_one(
            "SELECT * FROM delivery_rollouts WHERE id = ?", (rollout_id,)
        )
        return None if row is None else _row(row)

    async def of_model(self, tenant: str, model: str) -> list[Rollout]:
        rows = await self.sql.fetch_all(
            "SELECT * FROM delivery_rollouts WHERE tenant = ? AND model = ?"
            " ORDER BY created_at DESC, id",
            (tenant, model),
        )
        return [_row(r) for r in rows]

    async def needing_work(self) -> list[Rollout]:
        """Running rollouts, and ended ones whose last traffic change is not yet applied."""
        rows = await self.sql.fetch_all(
            "SELECT * FROM delivery_rollouts WHERE active = 1 OR applied < revision"
            " ORDER BY created_at"
        )
        return [_row(r) for r in rows]

    async def save(
        self, before: Rollout, after: Rollout, *, then: InTransaction | None = None
    ) -> Rollout | None:
        """Write ``after`` if the row is still at ``before.revision``, with ``then`` in the
        same transaction; None when it moved (and ``then`` is not run)."""
        moved = replace(after, revision=before.revision + 1)
        async with self.sql.transaction() as tx:
            count = await tx.execute(
                "UPDATE delivery_rollouts SET state = ?, phase = ?, step = ?, weight = ?,"
                " step_base = ?, history = ?, figures = ?, reason = ?, revision = ?, active = ?,"
                " updated_at = ?, evaluated_at = ? WHERE id = ? AND revision = ?",
                (
                    moved.state,
                    moved.phase,
                    moved.step,
                    moved.weight,
                    moved.step_base,
                    _json(moved.history),
                    _json(moved.figures),
                    moved.reason,
                    moved.revision,
                    1 if moved.running else None,
                    moved.updated_at,
                    moved.evaluated_at,
                    before.id,
                    before.revision,
                ),
            )
            if count and then is not None:
                await then(tx)
        return moved if count else None

    async def mark_applied(self, rollout: Rollout) -> None:
        await self.sql.execute(
            "UPDATE delivery_rollouts SET applied = ? WHERE id = ? AND applied < ?",
            (rollout.revision, rollout.id, rollout.revision),
        )

    async def note_figures(self, rollout: Rollout, figures: dict[str, Any], at: str) -> None:
        """The latest look's figures, without a transition (a hold)."""
        await self.sql.execute(
            "UPDATE delivery_rollouts SET figures = ?, evaluated_at = ? WHERE id = ?"
            " AND revision = ?",
            (_json(figures), at, rollout.id, rollout.revision),
        )


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()
