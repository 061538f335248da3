"""One contract for every SQL store backend: SQLite and PostgreSQL (the real server)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from meshgate.errors import BackendUnavailable
from meshgate.sql import Migration, SqlStore, migrate, open_sql_store

MIGRATIONS = [
    Migration("demo", 1, "CREATE TABLE things (id {autoinc}, name TEXT NOT NULL UNIQUE)"),
    Migration(
        "demo", 2, "ALTER TABLE things ADD COLUMN payload {blob}; CREATE INDEX t_n ON things (name)"
    ),
]


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.db"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[SqlStore]:
    backend = open_sql_store(store_url)
    await backend.start()
    yield backend
    await backend.close()


async def test_migrations_apply_once_in_order(store: SqlStore) -> None:
    applied = await migrate(store, MIGRATIONS)
    assert [(m.domain, m.version) for m in applied] == [("demo", 1), ("demo", 2)]
    assert await migrate(store, MIGRATIONS) == []
    await store.execute("INSERT INTO things (name, payload) VALUES (?, ?)", ("a", b"\x00\x01"))
    row = await store.fetch_one("SELECT id, name, payload FROM things WHERE name = ?", ("a",))
    assert row is not None and row["name"] == "a" and bytes(row["payload"]) == b"\x00\x01"


async def test_concurrent_starts_migrate_once(store_url: str) -> None:
    stores = [open_sql_store(store_url) for _ in range(3)]
    for s in stores:
        await s.start()
    try:
        results = await asyncio.gather(*(migrate(s, MIGRATIONS) for s in stores))
        assert sorted(len(r) for r in results) == [0, 0, 2]
    finally:
        for s in stores:
            await s.close()


async def test_a_failed_transaction_leaves_nothing(store: SqlStore) -> None:
    await migrate(store, MIGRATIONS)
    with pytest.raises(RuntimeError):
        async with store.transaction() as tx:
            await tx.execute("INSERT INTO things (name) VALUES (?)", ("kept?",))
            raise RuntimeError("boom")
    assert await store.fetch_all("SELECT * FROM things") == []
    async with store.transaction() as tx:
        await tx.execute("INSERT INTO things (name) VALUES (?)", ("kept",))
    assert [r["name"] for r in await store.fetch_all("SELECT name FROM things")] == ["kept"]


async def test_rowcount_and_fetch_all(store: SqlStore) -> None:
    await migrate(store, MIGRATIONS)
    for name in ("x", "y", "z"):
        await store.execute("INSERT INTO things (name) VALUES (?)", (name,))
    assert await store.execute("DELETE FROM things WHERE name <> ?", ("y",)) == 2
    assert await store.fetch_all("SELECT name FROM things ORDER BY name") == [{"name": "y"}]
    assert await store.fetch_one("SELECT name FROM things WHERE name = ?", ("nope",)) is None


async def test_unreachable_postgres_is_a_clear_backend_error() -> None:
    store = open_sql_store("postgresql://127.0.0.1:1/none?connect_timeout=1")
    with pytest.raises(BackendUnavailable, match=r"(?i)postgresql"):
        await store.start()
