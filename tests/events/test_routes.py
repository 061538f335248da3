"""GET/POST /v1/events and the export, through the HTTP surface, tenant by tenant."""

from __future__ import annotations

import io
from typing import Any

import httpx
import orjson
import pyarrow.parquet as pq
import pytest


async def key_for(client: httpx.AsyncClient, tenant: str, *scopes: str) -> dict[str, str]:
    response = await client.post("/v1/admin/keys", json={"tenant": tenant, "scopes": list(scopes)})
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['key']}"}


def cloudevent(n: int, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "specversion": "1.0",
        "id": f"order-{n}",
        "source": "/shop",
        "type": "shop.order.placed",
        "subject": f"order/{n}",
        "data": {"n": n},
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


async def all_events(client: httpx.AsyncClient, headers: dict[str, str] | None = None) -> list:
    response = await client.get("/v1/events", params={"limit": 1000}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["events"]


async def test_posted_event_is_read_back_as_a_cloudevent_with_its_sequence(client):
    posted = await client.post("/v1/events", json=cloudevent(1, time="2026-01-02T03:04:05Z"))
    assert posted.status_code == 201, posted.text
    event = posted.json()
    assert event["sequence"] >= 1 and event["specversion"] == "1.0"
    [read] = await all_events(client)
    assert read == event
    assert read["time"] == "2026-01-02T03:04:05.000000Z" and read["data"] == {"n": 1}


async def test_paging_with_next_after_and_filters(client):
    await client.post("/v1/events", json=[cloudevent(n) for n in range(5)])
    await client.post("/v1/events", json=cloudevent(9, type="shop.order.cancelled"))
    first = (await client.get("/v1/events", params={"limit": 2})).json()
    assert [e["data"]["n"] for e in first["events"]] == [0, 1]
    second = (await client.get("/v1/events", params={"after": first["next_after"]})).json()
    assert [e["data"]["n"] for e in second["events"]] == [2, 3, 4, 9]
    end = (await client.get("/v1/events", params={"after": second["next_after"]})).json()
    assert end == {"events": [], "next_after": second["next_after"]}
    by_type = await client.get("/v1/events", params={"type": "shop.order.cancelled"})
    assert [e["data"]["n"] for e in by_type.json()["events"]] == [9]
    by_subject = await client.get("/v1/events", params={"subject": "order/3"})
    assert [e["data"]["n"] for e in by_subject.json()["events"]] == [3]


async def test_a_repeated_event_is_stored_once(client):
    one = (await client.post("/v1/events", json=cloudevent(1))).json()
    again = (await client.post("/v1/events", json=cloudevent(1, data={"n": "again"}))).json()
    assert again["sequence"] == one["sequence"]
    assert [e["data"] for e in await all_events(client)] == [{"n": 1}]


async def test_a_tenant_sees_only_its_own_events(client):
    acme = await key_for(client, "acme", "events:read", "events:write")
    globex = await key_for(client, "globex", "events:read", "events:write")
    await client.post("/v1/events", json=cloudevent(1), headers=acme)
    # The same source and id in another tenant is another event, not a duplicate.
    await client.post("/v1/events", json=cloudevent(1, data={"n": "g"}), headers=globex)
    assert [e["data"] for e in await all_events(client, acme)] == [{"n": 1}]
    assert [e["data"] for e in await all_events(client, globex)] == [{"n": "g"}]
    assert await all_events(client) == []  # the admin key's own tenant has none


async def test_scopes_are_enforced(client):
    reader = await key_for(client, "acme", "events:read")
    refused = await client.post("/v1/events", json=cloudevent(1), headers=reader)
    assert refused.status_code == 403
    outsider = await key_for(client, "acme", "context:read")
    assert (await client.get("/v1/events", headers=outsider)).status_code == 403
    assert await all_events(client, reader) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (cloudevent(1, type="meshgate.prediction.made"), "type"),
        (cloudevent(1, specversion="0.3"), "specversion"),
        (cloudevent(1, id=None), "id"),
        (cloudevent(1, id=""), "id"),
        (cloudevent(1, source=None), "source"),
        (cloudevent(1, type=None), "type"),
        (cloudevent(1, type="has space"), "type"),
        (cloudevent(1, time="yesterday"), "time"),
        (cloudevent(1, time="2026-01-02T03:04:05"), "time"),
        (cloudevent(1, subject=5), "subject"),
        (cloudevent(1, source="has space"), "source"),
        (cloudevent(1, dataschema=""), "dataschema"),
        (cloudevent(1, sequence=7), "sequence"),
        (cloudevent(1, **{"Bad-Name": "x"}), "Bad-Name"),
        (cloudevent(1, traceparent={"nested": True}), "traceparent"),
        (cloudevent(1, datacontenttype="text/plain", data={"a": 1}), "data"),
        ("just a string", "body"),
        ([], "body"),
        ([cloudevent(1), cloudevent(2, id=None)], "[1].id"),
    ],
)
async def test_bad_events_are_refused_naming_the_field_and_nothing_is_stored(client, body, field):
    response = await client.post("/v1/events", json=body)
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["field"] == field, problem
    assert await all_events(client) == []


async def test_malformed_json_is_a_4xx_and_nothing_is_stored(client):
    response = await client.post(
        "/v1/events", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert 400 <= response.status_code < 500
    form = await client.post(
        "/v1/events", content=b"a=1", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert form.status_code == 415 and "content-type" in form.text
    assert await all_events(client) == []


async def test_cloudevents_media_type_and_dataschema_are_accepted(client):
    body = orjson.dumps(cloudevent(1, dataschema="https://schemas.example/order.json"))
    response = await client.post(
        "/v1/events", content=body, headers={"Content-Type": "application/cloudevents+json"}
    )
    assert response.status_code == 201, response.text
    assert response.json()["dataschema"] == "https://schemas.example/order.json"
    schema = (await client.get("/openapi.json")).json()["paths"]["/v1/events"]["post"]
    assert "application/cloudevents+json" in schema["requestBody"]["content"]


@pytest.mark.parametrize(
    "params",
    [{"after": -1}, {"limit": 0}, {"limit": 5000}, {"after": "x"}, {"type": "bad type"}],
)
async def test_bad_read_parameters_are_refused(client, params):
    response = await client.get("/v1/events", params=params)
    assert response.status_code == 422
    assert next(iter(params)) in response.text


async def test_export_as_jsonl_and_parquet_with_type_and_since(client):
    await client.post(
        "/v1/events",
        json=[
            cloudevent(1, time="2026-01-01T00:00:00Z"),
            cloudevent(2, time="2026-03-01T00:00:00Z"),
        ],
    )
    await client.post("/v1/events", json=cloudevent(3, type="shop.other"))
    jsonl = await client.get(
        "/v1/events/export",
        params={"type": "shop.order.placed", "since": "2026-02-01T00:00:00Z"},
    )
    assert jsonl.status_code == 200
    lines = [orjson.loads(line) for line in jsonl.content.splitlines()]
    assert [e["data"] for e in lines] == [{"n": 2}]

    parquet = await client.get("/v1/events/export", params={"format": "parquet"})
    assert parquet.status_code == 200
    table = pq.read_table(io.BytesIO(parquet.content))
    assert table.column("id").to_pylist() == ["order-1", "order-2", "order-3"]
    assert [orjson.loads(d) for d in table.column("data").to_pylist()] == [
        {"n": 1},
        {"n": 2},
        {"n": 3},
    ]

    bad = await client.get("/v1/events/export", params={"format": "xlsx"})
    assert bad.status_code == 422 and "format" in bad.text
    bad_since = await client.get("/v1/events/export", params={"since": "last week"})
    assert bad_since.status_code == 422 and "since" in bad_since.text


async def test_export_shows_personal_data_of_erased_users_as_erased(client):
    events = client.app.state.services.events  # type: ignore[attr-defined]
    await events.publish(
        "meshgate.prediction.made",
        tenant="default",
        data={"m": 1},
        personal={"n": "Ada"},
        user_id="u1",
    )
    await events.shred_user("default", "u1")
    body = (await client.get("/v1/events/export")).content
    [line] = [orjson.loads(x) for x in body.splitlines()]
    assert line["data"] == {"m": 1, "personal": {"erased": True}}
    assert b"Ada" not in body
