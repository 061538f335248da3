"""The platform's SQL store port: keys, tenants, registry, audit.

Statements use ``?`` placeholders and portable DDL; a backend translates what its driver needs.
Migrations carry ``{blob}`` and ``{autoinc}`` for the two types the dialects spell differently.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

Row = dict[str, Any]
Params = Sequence[Any]


@dataclass(frozen=True)
class Migration:
    """One schema step of one domain; applied once, in version order."""

    domain: str
    version: int
    sql: str


class SqlSession(Protocol):
    """What a statement runs on: the store itself or an open transaction."""

    async def execute(self, sql: str, params: Params = ()) -> int: ...
    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None: ...
    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]: ...


InTransaction = Callable[[SqlSession], Awaitable[object]]
"""Work a caller adds to the end of a change's transaction (the audit record of the change):
it commits with the change, and the change is rolled back if it fails."""


class SqlStore(SqlSession, Protocol):
    dialect: str

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def ping(self) -> None: ...
    def transaction(self) -> AbstractAsyncContextManager[SqlSession]: ...
    def render(self, ddl: str) -> str: ...

    def patient(self, seconds: float) -> AbstractContextManager[None]:
        """Inside, a statement or a wait for a connection may take up to ``seconds``: start-up
        work, where nodes starting together wait on each other's migrations."""
        ...

    def hurry(self, seconds: float) -> None:
        """From now on a statement or a wait for a connection takes at most ``seconds``: the
        process is closing, and a database that hangs must not hold its shutdown."""
        ...


async def migrate(store: SqlStore, migrations: Sequence[Migration]) -> list[Migration]:
    """Apply the migrations not yet applied; returns those it applied."""
    applied: list[Migration] = []
    async with store.transaction() as tx:
        if store.dialect == "postgresql":
            # Two processes starting together must not both run the same step (nor race on
            # creating the bookkeeping table itself).
            await tx.execute("SELECT pg_advisory_xact_lock(7345521)")
        await tx.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " domain TEXT NOT NULL, version INTEGER NOT NULL, PRIMARY KEY (domain, version))"
        )
        done = {
            (r["domain"], r["version"])
            for r in await tx.fetch_all("SELECT domain, version FROM schema_migrations")
        }
        for m in sorted(migrations, key=lambda m: (m.domain, m.version)):
            if (m.domain, m.version) in done:
                continue
            for statement in split_statements(store.render(m.sql)):
                await tx.execute(statement)
            await tx.execute(
                "INSERT INTO schema_migrations (domain, version) VALUES (?, ?)",
                (m.domain, m.version),
            )
            applied.append(m)
    return applied


def split_statements(sql: str) -> list[str]:
    return [s.strip() for s in sql.split(";") if s.strip()]
