"""Consumer groups, replay and crypto-shredding through the service, on every backend."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from meshgate.events.base import Filter
from meshgate.events.envelope import ERASED, Event
from meshgate.events.service import EventService
from tests.conftest import app_client

from .conftest import BACKENDS, drop_nats_stream, log_url
from .test_stream import wait_for


@pytest.fixture(params=BACKENDS)
async def events(
    request: pytest.FixtureRequest, make_settings, tmp_path: Path, namespace: str
) -> AsyncIterator[EventService]:
    url = log_url(request.param, request, tmp_path)
    settings = make_settings(
        events={"url": url, "poll_interval_seconds": 0.02}, namespace=namespace
    )
    async with app_client(settings) as client:
        service = client.app.state.services.events  # type: ignore[attr-defined]
        yield service
    if request.param == "nats":
        await drop_nats_stream(url, namespace)


async def committed_to(events: EventService, group: str, sequence: int) -> None:
    for _ in range(250):
        if await events.log.committed(group) >= sequence:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{group} never committed {sequence}")


async def publish(events: EventService, *ns: int, type: str = "shop.order") -> list[Event]:
    return [await events.publish(type, tenant="t", data={"n": n}) for n in ns]


async def test_a_group_resumes_after_its_committed_offset(events: EventService):
    await publish(events, 1, 2, 3)
    seen: list[int] = []

    async def handler(event: Event) -> None:
        seen.append(event.data["n"])

    task = asyncio.create_task(events.consume("billing", handler, where=Filter(tenant="t")))
    await wait_for(lambda: seen == [1, 2, 3])
    await committed_to(events, "billing", 3)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await publish(events, 4)

    task = asyncio.create_task(events.consume("billing", handler, where=Filter(tenant="t")))
    await wait_for(lambda: seen == [1, 2, 3, 4])
    await publish(events, 5)
    await wait_for(lambda: seen == [1, 2, 3, 4, 5])
    # The commit follows the handler; waiting for it is what a clean stop does.
    await committed_to(events, "billing", 5)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert await events.log.committed("billing") == 5


async def test_an_event_whose_handler_failed_is_handled_again(events: EventService):
    published = await publish(events, 1, 2, 3)
    seen: list[int] = []

    async def crash_on_two(event: Event) -> None:
        if event.data["n"] == 2:
            raise RuntimeError("handler crashed")
        seen.append(event.data["n"])

    with pytest.raises(RuntimeError):
        await events.consume("g", crash_on_two)
    # Nothing of the failed batch was committed: the batch holds 2, and 1 too unless the
    # process's tap had read 1 alone before 2 was appended (then 1 was a batch of its own).
    committed = await events.log.committed("g")
    assert committed in (0, published[0].sequence)
    again = [e.data["n"] for e in published if e.sequence > committed]
    assert seen == [1]

    async def ok(event: Event) -> None:
        seen.append(event.data["n"])

    task = asyncio.create_task(events.consume("g", ok))
    await wait_for(lambda: seen == [1, *again])
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_replay_makes_a_running_group_handle_the_range_again(events: EventService):
    first, *_ = await publish(events, 1, 2, 3)
    seen: list[int] = []

    async def handler(event: Event) -> None:
        seen.append(event.data["n"])

    task = asyncio.create_task(events.consume("g", handler))
    await wait_for(lambda: seen == [1, 2, 3])
    await committed_to(events, "g", 3)
    await events.replay("g", after=first.sequence)
    await wait_for(lambda: seen == [1, 2, 3, 2, 3])
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_shredding_erases_personal_parts_in_reads_and_tails(events: EventService):
    kept = await events.publish(
        "meshgate.context.updated", tenant="t", data={"k": 1}, personal={"name": "Bo"}, user_id="b"
    )
    gone = await events.publish(
        "meshgate.context.updated", tenant="t", data={"k": 2}, personal={"name": "Al"}, user_id="a"
    )
    assert await events.shred_user("t", "a") == 1
    assert await events.shred_user("t", "a") == 0
    read = await events.read(where=Filter(tenant="t"))
    assert [(e.sequence, e.personal) for e in read] == [
        (kept.sequence, {"name": "Bo"}),
        (gone.sequence, ERASED),
    ]
    tail = events.tail(after=0, where=Filter(tenant="t"))
    tailed = [await anext(tail), await anext(tail)]
    await tail.aclose()
    assert [e.personal for e in tailed] == [{"name": "Bo"}, ERASED]
    # A later event of the erased user gets a fresh key and is readable again.
    again = await events.publish(
        "meshgate.context.updated", tenant="t", data={}, personal={"name": "Al2"}, user_id="a"
    )
    [last] = await events.read(after=again.sequence - 1)
    assert last.personal == {"name": "Al2"}
