"""Jobs in the platform's SQL store: dataset builds and training runs, queued by any node and
run by the one runner of the cluster, so a job outlives the node that queued it.

A job is ``queued``, ``running`` (by the runner named in ``holder``), then ``succeeded`` or
``failed`` with its reason. Writes by a runner are guarded by its name: a runner that lost
its lease (and whose job was handed to the next one) can no longer change the job.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

from meshgate.errors import NotFound
from meshgate.sql import Migration, SqlStore

MIGRATIONS = [
    Migration(
        "jobs",
        1,
        """
        CREATE TABLE jobs (
            id TEXT PRIMARY KEY,
            tenant TEXT NOT NULL,
            kind TEXT NOT NULL,
            model TEXT NOT NULL,
            status TEXT NOT NULL,
            request TEXT NOT NULL,
            result TEXT,
            error TEXT,
            progress TEXT,
            holder TEXT,
            attempts INTEGER NOT NULL,
            created_by TEXT NOT NULL,
            created_at TEXT NOT NULL,
            started_at TEXT,
            finished_at TEXT
        );
        CREATE INDEX jobs_by_status ON jobs (status, created_at)
        """,
    )
]
Kind = Literal["dataset", "training"]
PREFIX: dict[str, str] = {"dataset": "ds_", "training": "job_"}


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True)
class Job:
    id: str
    tenant: str
    kind: str
    model: str
    status: str
    request: dict[str, Any]
    result: dict[str, Any] | None
    error: str | None
    progress: dict[str, Any] | None
    attempts: int
    created_by: str
    created_at: str
    started_at: str | None
    finished_at: str | None
    holder: str | None = None

    def public(self) -> dict[str, Any]:
        """What the API shows of a job."""
        return {
            "id": self.id,
            "kind": self.kind,
            "model": self.model,
            "status": self.status,
            "request": self.request,
            "result": self.result,
            "error": self.error,
            "progress": self.progress,
            "attempts": self.attempts,
            "created_by": self.created_by,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
        }


def _job(row: dict[str, Any]) -> Job:
    def parsed(name: str) -> Any:
        return orjson.loads(row[name]) if row[name] is not None else None

    return Job(
        id=row["id"],
        tenant=row["tenant"],
        kind=row["kind"],
        model=row["model"],
        status=row["status"],
        request=orjson.loads(row["request"]),
        result=parsed("result"),
        error=row["error"],
        progress=parsed("progress"),
        attempts=int(row["attempts"]),
        created_by=row["created_by"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        holder=row["holder"],
    )


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


class JobStore:
    def __init__(self, sql: SqlStore):
        self.sql = sql

    async def create(
        self, *, tenant: str, kind: Kind, model: str, request: dict[str, Any], actor: str
    ) -> Job:
        job_id = PREFIX[kind] + secrets.token_hex(10)
        await self.sql.execute(
            "INSERT INTO jobs (id, tenant, kind, model, status, request, attempts, created_by,"
            " created_at) VALUES (?, ?, ?, ?, 'queued', ?, 0, ?, ?)",
            (job_id, tenant, kind, model, _json(request), actor, now()),
        )
        return await self.get(tenant, job_id)

    async def find(self, tenant: str, job_id: str) -> Job | None:
        row = await self.sql.fetch_one(
            "SELECT * FROM jobs WHERE id = ? AND tenant = ?", (job_id, tenant)
        )
        return _job(row) if row is not None else None

    async def get(self, tenant: str, job_id: str, kind: str | None = None) -> Job:
        """The tenant's job; another tenant's does not exist for the caller."""
        found = await self.find(tenant, job_id)
        if found is None or (kind is not None and found.kind != kind):
            what = "dataset" if kind == "dataset" else "job"
            raise NotFound(f"no {what} {job_id!r}")
        return found

    async def load(self, job_id: str) -> Job:
        row = await self.sql.fetch_one("SELECT * FROM jobs WHERE id = ?", (job_id,))
        if row is None:
            raise NotFound(f"no job {job_id!r}")
        return _job(row)

    async def queued(self, kind: str, limit: int = 10) -> list[str]:
        rows = await self.sql.fetch_all(
            "SELECT id FROM jobs WHERE status = 'queued' AND kind = ? ORDER BY created_at LIMIT ?",
            (kind, limit),
        )
        return [r["id"] for r in rows]

    async def claim(self, job_id: str, holder: str) -> bool:
        """Take a queued job; False when another runner took it first."""
        changed = await self.sql.execute(
            "UPDATE jobs SET status = 'running', holder = ?, attempts = attempts + 1,"
            " started_at = ? WHERE id = ? AND status = 'queued'",
            (holder, now(), job_id),
        )
        return changed == 1

    async def report(self, job_id: str, holder: str, progress: dict[str, Any]) -> None:
        await self.sql.execute(
            "UPDATE jobs SET progress = ? WHERE id = ? AND holder = ? AND status = 'running'",
            (_json(progress), job_id, holder),
        )

    async def finish(
        self,
        job_id: str,
        holder: str,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> bool:
        """Succeeded (``result``) or failed (``error``); False when the job is not ours now."""
        status = "failed" if error is not None else "succeeded"
        changed = await self.sql.execute(
            "UPDATE jobs SET status = ?, result = ?, error = ?, finished_at = ?"
            " WHERE id = ? AND holder = ? AND status = 'running'",
            (status, _json(result) if result is not None else None, error, now(), job_id, holder),
        )
        return changed == 1

    async def orphans(self, holder: str) -> list[Job]:
        """Jobs marked running by another runner: it lost the lease, so it stopped or froze."""
        rows = await self.sql.fetch_all(
            "SELECT * FROM jobs WHERE status = 'running' AND holder <> ?", (holder,)
        )
        return [_job(r) for r in rows]

    async def requeue(self, job_id: str, previous_holder: str) -> None:
        await self.sql.execute(
            "UPDATE jobs SET status = 'queued', holder = NULL WHERE id = ? AND holder = ?"
            " AND status = 'running'",
            (job_id, previous_holder),
        )

    async def abandon(self, job_id: str, previous_holder: str, reason: str) -> bool:
        changed = await self.sql.execute(
            "UPDATE jobs SET status = 'failed', error = ?, finished_at = ?"
            " WHERE id = ? AND holder = ? AND status = 'running'",
            (reason, now(), job_id, previous_holder),
        )
        return changed == 1

    async def holder_of(self, job_id: str) -> str | None:
        row = await self.sql.fetch_one("SELECT holder FROM jobs WHERE id = ?", (job_id,))
        return row["holder"] if row is not None else None
