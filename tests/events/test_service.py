"""The contract other domains rely on: publish, on, shred_user (docs/architecture.md)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest

from meshgate.errors import ValidationFailed
from meshgate.events.base import Filter
from meshgate.events.envelope import ERASED, Event, Record
from meshgate.events.service import EventService


def events_of(client: httpx.AsyncClient) -> EventService:
    service = client.app.state.services.events  # type: ignore[attr-defined]
    assert service is not None
    return service


async def test_publish_returns_durable_event_with_consecutive_sequences(client):
    events = events_of(client)
    first = await events.publish("meshgate.model.registered", tenant="acme", data={"name": "a"})
    second = await events.publish("meshgate.model.registered", tenant="acme", data={"name": "b"})
    assert (first.sequence + 1, first.tenant) == (second.sequence, "acme")
    assert first.source == "/meshgate" and first.time.tzinfo is not None
    stored = await events.read(after=first.sequence - 1, where=Filter(tenant="acme"))
    assert [e.data["name"] for e in stored] == ["a", "b"]


async def test_same_source_and_id_is_stored_once(client):
    events = events_of(client)
    one = await events.publish("crm.sync", tenant="acme", data=1, source="/crm", id="e-1")
    again = await events.publish("crm.sync", tenant="acme", data=2, source="/crm", id="e-1")
    other_source = await events.publish("crm.sync", tenant="acme", data=3, source="/erp", id="e-1")
    assert again.sequence == one.sequence
    assert other_source.sequence == one.sequence + 1
    stored = await events.read(where=Filter(tenant="acme"))
    assert [e.data for e in stored] == [1, 3]


async def test_tenants_do_not_see_each_other(client):
    events = events_of(client)
    await events.publish("meshgate.context.updated", tenant="a", data={"x": 1})
    await events.publish("meshgate.context.updated", tenant="b", data={"x": 2})
    assert [e.data for e in await events.read(where=Filter(tenant="b"))] == [{"x": 2}]


async def test_on_calls_handlers_by_type_prefix_without_blocking_the_publisher(client):
    events = events_of(client)
    seen: list[Event] = []
    release = asyncio.Event()

    async def slow(event: Event) -> None:
        await release.wait()
        seen.append(event)

    events.on("meshgate.prediction.", slow)
    made = await asyncio.wait_for(
        events.publish("meshgate.prediction.made", tenant="t", data={"y": 1}), 2
    )
    await events.publish("meshgate.alert.fired", tenant="t", data={})
    release.set()
    for _ in range(100):
        if seen:
            break
        await asyncio.sleep(0.01)
    assert [e.id for e in seen] == [made.id]


async def test_personal_part_is_readable_until_the_user_is_erased(client):
    events = events_of(client)
    personal = {"email": "ada@example.com"}
    user = "user-" + "7" * 12
    published = await events.publish(
        "meshgate.prediction.made",
        tenant="t",
        data={"model": "m"},
        personal=personal,
        user_id=user,
    )
    other = await events.publish(
        "meshgate.prediction.made", tenant="t", data={"model": "m"}, personal={"n": 2}, user_id="u2"
    )
    assert published.personal == personal
    [read] = await events.read(after=published.sequence - 1, limit=1)
    assert read.personal == personal and read.to_cloudevent()["data"]["personal"] == personal

    assert published.user_id == user
    assert await events.shred_user("t", user) == 1
    after = await events.read(after=published.sequence - 1, limit=2)
    assert [e.personal for e in after] == [ERASED, {"n": 2}]
    assert after[0].data == {"model": "m"} and after[0].sequence == published.sequence
    assert after[1].sequence == other.sequence
    # Nothing of the clear text is left in the log file itself.
    db = client.app.state.services.settings.data_dir / "events.db"  # type: ignore[attr-defined]
    # Nor the user id: the log names the owner by pseudonym only.
    assert b"ada@example.com" not in db.read_bytes() and user.encode() not in db.read_bytes()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"type": "", "data": {}}, "type"),
        ({"type": "bad type", "data": {}}, "type"),
        ({"type": "x.y", "data": {}, "personal": {"a": 1}}, "user_id"),
        ({"type": "x.y", "data": [1], "personal": {"a": 1}, "user_id": "u"}, "data"),
        ({"type": "x.y", "data": {1, 2}}, "data"),
    ],
)
async def test_bad_publish_is_refused_and_stores_nothing(client, kwargs: dict[str, Any], field):
    events = events_of(client)
    before = await events.log.last_sequence()
    with pytest.raises(ValidationFailed) as err:
        await events.publish(kwargs.pop("type"), tenant="t", **kwargs)
    assert err.value.extra["field"] == field
    assert await events.log.last_sequence() == before


async def test_a_stored_personal_part_without_a_readable_key_reads_as_erased(client):
    events = events_of(client)
    published = await events.publish(
        "meshgate.context.updated", tenant="t", data={}, personal={"a": 1}, user_id="u"
    )
    # An older record shape (a user_id field, no owner) still reads, its personal part erased.
    legacy = Record.loads(
        orjson.dumps(
            {
                "tenant": "t",
                "id": "x",
                "source": "/s",
                "type": "a.b",
                "time": "2026-01-01T00:00:00Z",
                "user_id": "u",
                "personal": "AAAA",
            }
        ),
        sequence=published.sequence + 1,
    )
    [event] = await events.open_records([legacy])
    assert event.personal == ERASED and event.sequence == published.sequence + 1
