"""The event outbox on both SQL stores: claims keep two nodes apart, the relay appends in order."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from meshgate.events.backends import open_event_log
from meshgate.events.base import EVERYTHING
from meshgate.events.envelope import Record
from meshgate.events.outbox import MIGRATIONS, EventOutbox, OutboxRelay
from meshgate.sql import SqlStore, migrate, open_sql_store


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/store.db"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
async def sql(store_url: str) -> AsyncIterator[SqlStore]:
    store = open_sql_store(store_url)
    await store.start()
    await migrate(store, MIGRATIONS)
    yield store
    await store.close()


def record(i: int) -> Record:
    return Record(
        tenant="t1",
        id=f"e{i}",
        source="/tests",
        type="com.example.kept",
        time="2026-12-01T00:00:00.000000Z",
        data={"i": i},
    )


async def test_a_claim_keeps_other_nodes_off_until_released(sql: SqlStore) -> None:
    node_a, node_b = EventOutbox(sql), EventOutbox(sql)
    for i in range(3):
        await node_a.keep(record(i))
    assert await node_a.count() == 3

    claimed = await node_a.claim()
    assert [r.id for _, r in claimed] == ["e0", "e1", "e2"]
    assert claimed[0][1].data == {"i": 0}
    assert await node_b.claim() == []  # held by node A for the time of its append

    await node_a.release([position for position, _ in claimed])
    taken = await node_b.claim()
    assert [r.id for _, r in taken] == ["e0", "e1", "e2"]
    await node_b.remove([position for position, _ in taken])
    assert await node_a.count() == 0


async def test_the_relay_appends_the_outbox_oldest_first(sql: SqlStore, tmp_path: Path) -> None:
    log = open_event_log(None, data_dir=tmp_path, namespace="t")
    await log.start()
    try:
        outbox = EventOutbox(sql)
        for i in range(250):  # more than one batch
            await outbox.keep(record(i))
        assert await OutboxRelay(outbox, log).drain() == 250
        appended = await log.read(0, 1000, EVERYTHING)
        assert [r.id for r in appended] == [f"e{i}" for i in range(250)]
        assert await outbox.count() == 0
    finally:
        await log.close()
