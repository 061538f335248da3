"""An audit trail on a real SQL store (SQLite and PostgreSQL), with a clock the test moves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from meshgate.governance.audit import AuditService
from meshgate.governance.config import AuditConfig
from meshgate.governance.signing import load_signer
from meshgate.governance.store import MIGRATIONS
from meshgate.sql import SqlStore, migrate, open_sql_store

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self, at: datetime = START):
        self.at = at

    def __call__(self) -> datetime:
        self.at += timedelta(milliseconds=1)
        return self.at

    def advance(self, **delta: float) -> None:
        self.at += timedelta(**delta)


@dataclass
class Trail:
    audit: AuditService
    sql: SqlStore
    clock: Clock
    data_dir: Path

    async def add(self, n: int, *, tenant: str = "acme", action: str = "thing.changed") -> None:
        for i in range(n):
            await self.audit.record(
                actor="key_alice",
                tenant=tenant,
                action=action,
                resource=f"things/{i}",
                details={"n": i},
            )

    async def sequences(self) -> list[int]:
        rows = await self.sql.fetch_all("SELECT seq FROM audit_records ORDER BY seq")
        return [int(r["seq"]) for r in rows]


@pytest.fixture(params=["sqlite", "postgresql"])
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'audit.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


async def open_trail(url: str, data_dir: Path, clock: Clock, **config: Any) -> Trail:
    sql = open_sql_store(url)
    await sql.start()
    await migrate(sql, MIGRATIONS)
    cfg = AuditConfig(**{"checkpoint_every": 5, **config})
    audit = AuditService(sql, load_signer(cfg, data_dir), cfg, clock=clock)
    return Trail(audit, sql, clock, data_dir)


@pytest.fixture
async def trail(sql_url: str, tmp_path: Path) -> AsyncIterator[Trail]:
    """Checkpoints every 5 records; background tasks off, so the test decides what runs."""
    t = await open_trail(sql_url, tmp_path / "data", Clock())
    yield t
    await t.sql.close()
