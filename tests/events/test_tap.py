"""The process's tap: each stretch of the log read once for every local consumer, on every
backend, while each consumer keeps its own position, filter and commits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from meshgate.events.base import EVERYTHING, EventLog, Filter
from meshgate.events.envelope import Record
from meshgate.events.follow import LogFollower
from meshgate.events.service import EventService
from meshgate.events.tap import LogTap
from tests.conftest import app_client

from .conftest import BACKENDS, drop_nats_stream, drop_rabbitmq_stream, log_url, record
from .test_consumers import committed_to
from .test_stream import wait_for


class Reads:
    """Wraps a log's ``read``: what each read returned, so a test can tell which records
    were read (and decoded) how many times."""

    def __init__(self, log: EventLog, *, hide_new: bool = False):
        self.log = log
        self.inner = log.read
        self.calls: list[tuple[int, Filter, list[int]]] = []
        self.hide_new = hide_new
        self.shown: set[int] = set()
        log.read = self.read  # type: ignore[method-assign]

    async def read(
        self, after: int = 0, limit: int = 100, where: Filter = EVERYTHING
    ) -> list[Record]:
        records = await self.inner(after, limit, where)
        if self.hide_new:
            # As a fresh JetStream consumer may: a record just appended is missing from the
            # first read that could see it.
            for i, r in enumerate(records):
                if r.sequence not in self.shown:
                    self.shown.add(r.sequence)
                    records = records[:i]
                    break
        self.calls.append((after, where, [r.sequence for r in records]))
        return records

    def times_read(self) -> dict[int, int]:
        counts: dict[int, int] = {}
        for _, _, sequences in self.calls:
            for s in sequences:
                counts[s] = counts.get(s, 0) + 1
        return counts


@pytest.fixture(params=BACKENDS)
async def events(
    request: pytest.FixtureRequest, make_settings: Any, tmp_path: Path, namespace: str
) -> AsyncIterator[EventService]:
    url = log_url(request.param, request, tmp_path)
    settings = make_settings(
        events={"url": url, "poll_interval_seconds": 0.02}, namespace=namespace
    )
    async with app_client(settings) as client:
        yield client.app.state.services.events  # type: ignore[attr-defined]
    if request.param == "nats":
        await drop_nats_stream(url, namespace)
    if request.param == "rabbitmq":
        await drop_rabbitmq_stream(url, namespace)


async def test_the_process_reads_each_record_once_for_every_consumer(events: EventService):
    reads = Reads(events.log)
    orders: list[int] = []
    refunds: list[int] = []
    followed: list[int] = []

    async def count_orders(records: list[Record]) -> None:
        orders.extend(r.data["n"] for r in records)

    async def count_refunds(records: list[Record]) -> None:
        refunds.extend(r.data["n"] for r in records)

    def follow(records: Sequence[Record]) -> None:
        followed.extend(r.data["n"] for r in records)

    tasks = [
        asyncio.create_task(
            events.consume_records("orders", count_orders, where=Filter(type="shop.order"))
        ),
        asyncio.create_task(
            events.consume_records("refunds", count_refunds, where=Filter(type_prefix="shop.re"))
        ),
    ]
    follower = LogFollower(events.tap, follow, name="t", where=Filter(tenant="t"))
    follower.start(0)
    try:
        for n in range(30):
            kind = "shop.order" if n % 3 else "shop.refund"
            await events.publish(kind, tenant="t", data={"n": n})
        await events.publish("shop.order", tenant="other", data={"n": 99})
        await wait_for(lambda: len(followed) == 30 and len(orders) == 21 and len(refunds) == 10)
        assert followed == list(range(30))
        assert orders == [n for n in range(30) if n % 3] + [99]
        assert refunds == [n for n in range(30) if not n % 3]
        last = await events.log.last_sequence()
        await committed_to(events, "orders", last)
        await committed_to(events, "refunds", last)
        # The monitoring follower and the spend and audit groups of the app read through the
        # same tap: every record came out of the log once, whoever wanted it. (A consumer that
        # starts after the others moved on reads the stretch before them alone, once.)
        shared = [c for c in reads.calls if c[1] == EVERYTHING]
        assert sorted(s for _, _, sequences in shared for s in sequences) == list(
            range(1, last + 1)
        )
        assert len(reads.calls) - len(shared) <= len(events.tap._readers)
    finally:
        await follower.close()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_consumer_far_behind_catches_up_alone_without_holding_the_others(
    event_log: EventLog,
):
    await event_log.append([record(n) for n in range(1, 41)])
    reads = Reads(event_log)
    tap = LogTap(event_log, batch=5, keep=10)
    late = tap.reader("late", 0)  # registered, idle: a consumer stuck in a slow handler
    quick = tap.reader("quick", 0)
    seen: list[int] = []
    after = 0
    while after < 40:
        found, after = await quick.next(after, EVERYTHING, 100, within=5)
        seen += [r.sequence for r in found]
    assert seen == list(range(1, 41))
    assert tap.base >= 30  # the window kept at most ``keep`` records for the idle one
    shared = len(reads.calls)
    # The late one reads by itself up to the window, then takes from it.
    got: list[int] = []
    after = 0
    while after < 40:
        found, after = await late.next(after, Filter(type="crm.synced"), 7, within=5)
        got += [r.sequence for r in found]
    assert got == list(range(1, 41))
    alone = reads.calls[shared:]
    assert alone and all(a < tap.base and w == Filter(type="crm.synced") for a, w, _ in alone)
    late.close()
    quick.close()
    await tap.close()


async def test_a_record_missing_from_the_first_read_after_its_append_is_not_skipped(
    event_log: EventLog,
):
    reads = Reads(event_log, hide_new=True)
    tap = LogTap(event_log)
    reader = tap.reader("group", 0)
    got: list[int] = []
    after = 0
    for n in range(1, 6):
        await event_log.append([record(n, type="crm.other"), record(100 + n)])
        while after < 2 * n:
            found, after = await reader.next(after, Filter(type="crm.synced"), 100, within=5)
            got += [r.data["n"] for r in found]
    assert got == [101, 102, 103, 104, 105]
    # Every record was hidden once, so each shared read that found nothing was read again.
    assert reads.times_read() == {s: 1 for s in range(1, 11)}
    reader.close()
    await tap.close()


async def test_a_follower_starting_past_the_window_does_not_read_what_nobody_needs(
    event_log: EventLog,
):
    await event_log.append([record(n) for n in range(1, 21)])
    reads = Reads(event_log)
    applied: list[int] = []
    follower = LogFollower(event_log, lambda rs: applied.extend(r.sequence for r in rs), name="f")
    follower.start(15)  # from a snapshot at 15
    try:
        await wait_for(lambda: applied == [16, 17, 18, 19, 20])
        assert all(after >= 15 for after, _, _ in reads.calls)
        await event_log.append([record(21)])
        await wait_for(lambda: applied[-1:] == [21])
        assert await follower.caught_up(5)
    finally:
        await follower.close()
