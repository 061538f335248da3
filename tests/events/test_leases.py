"""Once-per-cluster work: a lease in the shared SQL store has one holder at a time, is renewed
by it, and passes to another when it runs out or is released."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from meshgate.events.leases import MIGRATIONS, SqlLeases
from meshgate.sql import SqlStore, migrate, open_sql_store


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["sqlite", "postgresql"])
async def sql(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'leases.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    store = open_sql_store(url)
    await store.start()
    await migrate(store, MIGRATIONS)
    yield store
    await store.close()


async def test_one_holder_at_a_time_until_it_runs_out(sql: SqlStore) -> None:
    clock = Clock()
    node_a, node_b = SqlLeases(sql, clock=clock), SqlLeases(sql, clock=clock)
    assert await node_a.acquire("alerts", "a", 10)
    assert not await node_b.acquire("alerts", "b", 10)
    clock.now += 8
    assert await node_a.acquire("alerts", "a", 10)  # renewed: good until +18
    clock.now += 8
    assert not await node_b.acquire("alerts", "b", 10)
    clock.now += 3  # a stopped renewing: its lease ran out
    assert await node_b.acquire("alerts", "b", 10)
    assert not await node_a.acquire("alerts", "a", 10)
    assert await node_a.acquire("rollouts", "a", 10)  # leases are independent by name


async def test_a_released_lease_is_taken_over_at_once(sql: SqlStore) -> None:
    node_a, node_b = SqlLeases(sql), SqlLeases(sql)
    assert await node_a.acquire("alerts", "a", 60)
    await node_b.release("alerts", "b")  # not b's: nothing happens
    assert not await node_b.acquire("alerts", "b", 60)
    await node_a.release("alerts", "a")
    assert await node_b.acquire("alerts", "b", 60)
