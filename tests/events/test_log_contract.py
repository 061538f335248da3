"""The EventLog contract, run against SQLite, NATS JetStream, Redis Streams and RabbitMQ Streams
for real."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from meshgate.events.base import EventLog, Filter

from .conftest import record


async def test_append_assigns_consecutive_sequences_from_one(event_log: EventLog):
    assert await event_log.last_sequence() == 0
    stored = await event_log.append([record(1), record(2), record(3)])
    assert [r.sequence for r in stored] == [1, 2, 3]
    (single,) = await event_log.append([record(4)])
    assert single.sequence == 4
    assert await event_log.last_sequence() == 4


async def test_read_returns_what_was_appended_in_order(event_log: EventLog):
    await event_log.append([record(n, subject=f"s{n % 2}") for n in range(1, 11)])
    got = await event_log.read(after=0, limit=100)
    assert [r.data["n"] for r in got] == list(range(1, 11))
    assert [r.sequence for r in got] == list(range(1, 11))
    assert got[0].subject == "s1" and got[0].source == "/test" and got[0].tenant == "acme"
    assert [r.sequence for r in await event_log.read(after=7, limit=100)] == [8, 9, 10]
    assert [r.sequence for r in await event_log.read(after=2, limit=3)] == [3, 4, 5]
    assert await event_log.read(after=10) == []


async def test_read_filters_by_tenant_type_prefix_and_subject(event_log: EventLog):
    await event_log.append(
        [
            record(1, type="a.one", subject="x"),
            record(2, type="a.two", subject="y"),
            record(3, type="b.one", subject="x", tenant="other"),
            record(4, type="a.one", subject="y"),
        ]
    )

    async def seqs(where: Filter, limit: int = 100) -> list[int]:
        return [r.sequence for r in await event_log.read(0, limit, where)]

    assert await seqs(Filter(tenant="acme")) == [1, 2, 4]
    assert await seqs(Filter(tenant="other")) == [3]
    assert await seqs(Filter(type="a.one")) == [1, 4]
    assert await seqs(Filter(type_prefix="a.")) == [1, 2, 4]
    assert await seqs(Filter(subject="x")) == [1, 3]
    assert await seqs(Filter(tenant="acme", subject="y")) == [2, 4]
    assert await seqs(Filter(tenant="acme", type="a.one"), limit=1) == [1]
    assert await seqs(Filter(tenant="nobody")) == []


async def test_duplicate_source_and_id_is_stored_once(event_log: EventLog):
    (first,) = await event_log.append([record(1)])
    again = await event_log.append([record(1, data={"n": "retry"}), record(2)])
    assert [r.sequence for r in again] == [first.sequence, first.sequence + 1]
    other_tenant = await event_log.append([record(1, tenant="other")])
    assert other_tenant[0].sequence == first.sequence + 2
    got = await event_log.read()
    assert [r.data["n"] for r in got] == [1, 2, 1]


async def test_a_large_batch_with_repeats_gets_every_sequence_right(event_log: EventLog):
    (first,) = await event_log.append([record(5)])
    # More records than one statement takes, a repeat of a stored one and a repeat within.
    batch = [record(n) for n in range(6, 1206)] + [record(5), record(7), record(1206)]
    stored = await event_log.append(batch)
    fresh = list(range(first.sequence + 1, first.sequence + 1202))
    assert [r.sequence for r in stored] == [*fresh[:1200], first.sequence, fresh[1], fresh[1200]]
    got = await event_log.read(0, 2000)
    assert [r.data["n"] for r in got] == list(range(5, 1207))


async def test_concurrent_appends_get_unique_gapless_sequences(event_log: EventLog):
    async def producer(p: int) -> list[int]:
        out = []
        for i in range(20):
            (r,) = await event_log.append([record(p * 1000 + i)])
            out.append(r.sequence)
        return out

    results = await asyncio.gather(*(producer(p) for p in range(8)))
    every = sorted(s for seqs in results for s in seqs)
    assert every == list(range(1, 161))
    assert all(seqs == sorted(seqs) for seqs in results)  # each producer's order is kept
    stored = await event_log.read(0, 1000)
    assert [r.sequence for r in stored] == every


async def test_consumer_group_offsets_move_forward_and_seek_rewinds(event_log: EventLog):
    assert await event_log.committed("billing") == 0
    await event_log.commit("billing", 5)
    await event_log.commit("billing", 3)  # a late, smaller commit never moves it back
    assert await event_log.committed("billing") == 5
    assert await event_log.committed("other") == 0
    await event_log.seek("billing", 2)
    assert await event_log.committed("billing") == 2


async def test_wait_returns_when_a_record_arrives(event_log: EventLog):
    await event_log.append([record(1)])
    loop = asyncio.get_running_loop()
    started = loop.time()
    await event_log.wait(after=0, within=5)  # already there: at once
    assert loop.time() - started < 1

    async def later() -> None:
        await asyncio.sleep(0.05)
        await event_log.append([record(2)])

    task = asyncio.create_task(later())
    started = loop.time()
    await event_log.wait(after=1, within=5)
    assert loop.time() - started < 2 and await event_log.last_sequence() == 2
    await task
    started = loop.time()
    await event_log.wait(after=2, within=0.1)  # nothing new: gives up in time
    assert loop.time() - started < 1


async def test_rabbitmq_reads_older_pages_from_the_broker(
    request: pytest.FixtureRequest, tmp_path: Path, namespace: str
):
    """The RabbitMQ Streams log keeps only the newest records in memory; older pages come from
    the broker, filtered and in order, and a restarted process sees every record again."""
    from meshgate.events.backends.rabbitmq import RabbitStreamEventLog

    from .conftest import drop_rabbitmq_stream

    url = request.getfixturevalue("rabbitmq_stream_url")
    log = RabbitStreamEventLog(url, namespace=namespace, recent_records=3)
    await log.start()
    try:
        await log.append([record(n, tenant="acme" if n % 2 else "other") for n in range(1, 21)])
        await log.append([record(4, tenant="other")])  # a repeat: stored once
        assert [r.data["n"] for r in await log.read(0, 100)] == list(range(1, 21))
        assert [r.sequence for r in await log.read(5, 4)] == [6, 7, 8, 9]
        acme = await log.read(0, 100, Filter(tenant="acme"))
        assert [r.data["n"] for r in acme] == list(range(1, 21, 2))
        await log.close()
        again = RabbitStreamEventLog(url, namespace=namespace, recent_records=3)
        await again.start()
        assert await again.last_sequence() == 20
        (repeat,) = await again.append([record(7)])
        assert repeat.sequence == 7
        assert [r.sequence for r in await again.read(16, 100)] == [17, 18, 19, 20]
        await again.close()
    finally:
        await log.close()
        await drop_rabbitmq_stream(url, namespace)
