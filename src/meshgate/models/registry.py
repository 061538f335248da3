"""The model registry in the platform's SQL store: models, immutable versions, aliases, traffic.

Every change is also a row in ``model_history`` (what changed, to what, by whom, when), so the
question "which version served production on a given day" has an answer. Models belong to one
tenant; another tenant's model does not exist for the caller.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from meshgate.errors import Conflict, NotFound, ValidationFailed
from meshgate.models.config import (
    LoggingPolicy,
    ModelCreate,
    TrafficPolicy,
    VersionCreate,
)
from meshgate.sql import InTransaction, Migration, SqlSession, SqlStore

MIGRATIONS = [
    Migration(
        "models",
        1,
        """
        CREATE TABLE model_models (
            tenant TEXT NOT NULL,
            name TEXT NOT NULL,
            spec TEXT NOT NULL,
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (tenant, name)
        );
        CREATE TABLE model_versions (
            tenant TEXT NOT NULL,
            model TEXT NOT NULL,
            version TEXT NOT NULL,
            spec TEXT NOT NULL,
            registered_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (tenant, model, version)
        );
        CREATE TABLE model_aliases (
            tenant TEXT NOT NULL,
            model TEXT NOT NULL,
            alias TEXT NOT NULL,
            version TEXT NOT NULL,
            updated_by TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (tenant, model, alias)
        );
        CREATE TABLE model_traffic (
            tenant TEXT NOT NULL,
            model TEXT NOT NULL,
            policy TEXT NOT NULL,
            updated_by TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (tenant, model)
        );
        CREATE TABLE model_history (
            id {autoinc},
            tenant TEXT NOT NULL,
            model TEXT NOT NULL,
            change TEXT NOT NULL,
            details TEXT NOT NULL,
            actor TEXT NOT NULL,
            at TEXT NOT NULL
        );
        CREATE INDEX model_history_by_model ON model_history (tenant, model, id)
        """,
    )
]


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def default_logging(task: str) -> LoggingPolicy:
    if task in ("chat", "embedding"):
        return LoggingPolicy(inputs="hash", outputs="full")
    return LoggingPolicy(inputs="full", outputs="full")


class Registry:
    def __init__(self, sql: SqlStore):
        self.sql = sql

    # --- reads -------------------------------------------------------------------------

    async def list_models(self, tenant: str) -> list[dict[str, Any]]:
        rows = await self.sql.fetch_all(
            "SELECT name FROM model_models WHERE tenant = ? ORDER BY name", (tenant,)
        )
        return [await self.get_model(tenant, r["name"]) for r in rows]

    async def context_policies(self, tenant: str) -> dict[str, list[str]]:
        """Each model's ``context_policy`` allow list, by model name."""
        rows = await self.sql.fetch_all(
            "SELECT name, spec FROM model_models WHERE tenant = ? ORDER BY name", (tenant,)
        )
        return {r["name"]: list(orjson.loads(r["spec"])["context_policy"]["allow"]) for r in rows}

    async def model_names(self, tenant: str) -> list[tuple[str, str, str]]:
        rows = await self.sql.fetch_all(
            "SELECT name, spec, created_at FROM model_models WHERE tenant = ? ORDER BY name",
            (tenant,),
        )
        return [(r["name"], orjson.loads(r["spec"])["task"], r["created_at"]) for r in rows]

    async def find_model(self, tenant: str, name: str) -> dict[str, Any] | None:
        row = await self.sql.fetch_one(
            "SELECT spec, created_by, created_at FROM model_models WHERE tenant = ? AND name = ?",
            (tenant, name),
        )
        if row is None:
            return None
        versions = await self.sql.fetch_all(
            "SELECT version, spec, registered_by, created_at FROM model_versions"
            " WHERE tenant = ? AND model = ? ORDER BY created_at, version",
            (tenant, name),
        )
        aliases = await self.sql.fetch_all(
            "SELECT alias, version FROM model_aliases WHERE tenant = ? AND model = ?",
            (tenant, name),
        )
        traffic = await self.sql.fetch_one(
            "SELECT policy, updated_by, updated_at FROM model_traffic"
            " WHERE tenant = ? AND model = ?",
            (tenant, name),
        )
        spec = orjson.loads(row["spec"])
        if spec.get("logging") is None:
            spec["logging"] = default_logging(spec["task"]).model_dump()
        return {
            **spec,
            "created_by": row["created_by"],
            "created_at": row["created_at"],
            "versions": [
                {
                    **orjson.loads(v["spec"]),
                    "registered_by": v["registered_by"],
                    "created_at": v["created_at"],
                }
                for v in versions
            ],
            "aliases": {a["alias"]: a["version"] for a in aliases},
            "traffic": orjson.loads(traffic["policy"]) if traffic else None,
        }

    async def get_model(self, tenant: str, name: str) -> dict[str, Any]:
        found = await self.find_model(tenant, name)
        if found is None:
            raise NotFound(f"no model named {name!r}", code="model_not_found")
        return found

    async def history(self, tenant: str, name: str) -> list[dict[str, Any]]:
        await self.get_model(tenant, name)
        rows = await self.sql.fetch_all(
            "SELECT change, details, actor, at FROM model_history"
            " WHERE tenant = ? AND model = ? ORDER BY id",
            (tenant, name),
        )
        return [{**r, "details": orjson.loads(r["details"])} for r in rows]

    # --- changes -----------------------------------------------------------------------

    async def create_model(
        self, tenant: str, body: ModelCreate, actor: str, *, then: InTransaction | None = None
    ) -> dict[str, Any]:
        spec = body.model_dump()
        async with self.sql.transaction() as tx:
            if await self._exists(tx, tenant, body.name):
                raise Conflict(f"model {body.name!r} already exists")
            at = now()
            await tx.execute(
                "INSERT INTO model_models (tenant, name, spec, created_by, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (tenant, body.name, orjson.dumps(spec).decode(), actor, at),
            )
            await self._log(tx, tenant, body.name, "model.registered", spec, actor, at)
            await _finish(tx, then)
        return await self.get_model(tenant, body.name)

    async def add_version(
        self,
        tenant: str,
        model: str,
        body: VersionCreate,
        actor: str,
        *,
        then: InTransaction | None = None,
    ) -> dict[str, Any]:
        spec = body.model_dump(exclude_none=True)
        async with self.sql.transaction() as tx:
            if not await self._exists(tx, tenant, model):
                raise NotFound(f"no model named {model!r}", code="model_not_found")
            taken = await tx.fetch_one(
                "SELECT 1 AS x FROM model_versions WHERE tenant = ? AND model = ? AND version = ?",
                (tenant, model, body.version),
            )
            if taken:
                raise Conflict(
                    f"version {body.version!r} of {model!r} exists; versions are immutable"
                )
            at = now()
            await tx.execute(
                "INSERT INTO model_versions (tenant, model, version, spec, registered_by,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (tenant, model, body.version, orjson.dumps(spec).decode(), actor, at),
            )
            await self._log(tx, tenant, model, "model.version.registered", spec, actor, at)
            await _finish(tx, then)
        return {**spec, "registered_by": actor, "created_at": at}

    async def set_alias(
        self,
        tenant: str,
        model: str,
        alias: str,
        version: str,
        actor: str,
        *,
        then: InTransaction | None = None,
    ) -> dict[str, Any]:
        async with self.sql.transaction() as tx:
            await self._require_versions(tx, tenant, model, {version})
            at = now()
            # An upsert: nodes applying the same config at once must not collide.
            await tx.execute(
                "INSERT INTO model_aliases (tenant, model, alias, version, updated_by,"
                " updated_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, model, alias)"
                " DO UPDATE SET version = excluded.version, updated_by = excluded.updated_by,"
                " updated_at = excluded.updated_at",
                (tenant, model, alias, version, actor, at),
            )
            details = {"alias": alias, "version": version}
            await self._log(tx, tenant, model, "model.alias.set", details, actor, at)
            await _finish(tx, then)
        return details

    async def set_traffic(
        self,
        tenant: str,
        model: str,
        policy: TrafficPolicy,
        actor: str,
        *,
        then: InTransaction | None = None,
    ) -> dict[str, Any]:
        spec = policy.model_dump()
        async with self.sql.transaction() as tx:
            await self._require_versions(tx, tenant, model, policy.versions())
            at = now()
            await tx.execute(
                "INSERT INTO model_traffic (tenant, model, policy, updated_by, updated_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant, model) DO UPDATE SET"
                " policy = excluded.policy, updated_by = excluded.updated_by,"
                " updated_at = excluded.updated_at",
                (tenant, model, orjson.dumps(spec).decode(), actor, at),
            )
            await self._log(tx, tenant, model, "model.traffic.changed", spec, actor, at)
            await _finish(tx, then)
        return spec

    # --- helpers -----------------------------------------------------------------------

    @staticmethod
    async def _exists(tx: SqlSession, tenant: str, name: str) -> bool:
        row = await tx.fetch_one(
            "SELECT 1 AS x FROM model_models WHERE tenant = ? AND name = ?", (tenant, name)
        )
        return row is not None

    async def _require_versions(
        self, tx: SqlSession, tenant: str, model: str, versions: set[str]
    ) -> None:
        if not await self._exists(tx, tenant, model):
            raise NotFound(f"no model named {model!r}", code="model_not_found")
        rows = await tx.fetch_all(
            "SELECT version FROM model_versions WHERE tenant = ? AND model = ?", (tenant, model)
        )
        if missing := sorted(versions - {r["version"] for r in rows}):
            raise ValidationFailed(
                f"model {model!r} has no version {', '.join(map(repr, missing))}",
                param="version",
            )

    @staticmethod
    async def _log(
        tx: SqlSession,
        tenant: str,
        model: str,
        change: str,
        details: dict[str, Any],
        actor: str,
        at: str,
    ) -> None:
        await tx.execute(
            "INSERT INTO model_history (tenant, model, change, details, actor, at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (tenant, model, change, orjson.dumps(details).decode(), actor, at),
        )


async def _finish(tx: SqlSession, then: InTransaction | None) -> None:
    """The caller's last step of a change's transaction (its audit record)."""
    if then is not None:
        await then(tx)
