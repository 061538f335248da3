"""Users through the HTTP surface: merge patch, ETag/If-Match, limits and bad input."""

from __future__ import annotations

import httpx
import pytest

from tests.context.conftest import as_key, make_key

MERGE = {"Content-Type": "application/merge-patch+json"}


async def patch(api: httpx.AsyncClient, user: str, body: object, **headers: str) -> httpx.Response:
    import orjson

    return await api.patch(
        f"/v1/context/users/{user}", content=orjson.dumps(body), headers={**MERGE, **headers}
    )


async def test_patch_creates_then_merges_and_null_removes(api: httpx.AsyncClient) -> None:
    r = await patch(
        api, "u1", {"attributes": {"tier": "gold", "address": {"city": "Lyon", "zip": "69001"}}}
    )
    assert r.status_code == 201
    assert r.headers["etag"] == '"1"'
    r = await patch(
        api,
        "u1",
        {"attributes": {"address": {"zip": None}, "tier": None}, "preferences": {"language": "fr"}},
    )
    assert r.status_code == 200
    got = (await api.get("/v1/context/users/u1")).json()
    assert got["attributes"] == {"address": {"city": "Lyon"}}
    assert got["preferences"] == {"language": "fr"}
    assert got["version"] == 2 and got["user_id"] == "u1"
    assert got["updated_at"].endswith("Z")


async def test_plain_json_is_accepted_as_a_patch(api: httpx.AsyncClient) -> None:
    r = await api.patch("/v1/context/users/u1", json={"preferences": {"language": "de"}})
    assert r.status_code == 201
    assert (await api.get("/v1/context/users/u1")).json()["preferences"] == {"language": "de"}


async def test_get_carries_the_etag_and_honours_if_none_match(api: httpx.AsyncClient) -> None:
    await patch(api, "u1", {"attributes": {"a": 1}})
    r = await api.get("/v1/context/users/u1")
    assert r.headers["etag"] == '"1"'
    r = await api.get("/v1/context/users/u1", headers={"If-None-Match": '"1"'})
    assert r.status_code == 304


async def test_a_stale_if_match_is_412_and_writes_nothing(api: httpx.AsyncClient) -> None:
    await patch(api, "u1", {"attributes": {"n": 1}})
    await patch(api, "u1", {"attributes": {"n": 2}}, **{"If-Match": '"1"'})
    r = await patch(api, "u1", {"attributes": {"n": 3}}, **{"If-Match": '"1"'})
    assert r.status_code == 412
    assert r.headers["content-type"] == "application/problem+json"
    assert '"2"' in r.json()["detail"]
    got = (await api.get("/v1/context/users/u1")).json()
    assert got["attributes"] == {"n": 2} and got["version"] == 2
    r = await patch(api, "u1", {"attributes": {"n": 3}}, **{"If-Match": '"9", "2"'})
    assert r.status_code == 200 and r.json()["version"] == 3


async def test_if_match_on_an_absent_user_is_412(api: httpx.AsyncClient) -> None:
    r = await patch(api, "ghost", {"attributes": {"n": 1}}, **{"If-Match": "*"})
    assert r.status_code == 412
    assert (await api.get("/v1/context/users/ghost")).status_code == 404


async def test_an_unknown_user_is_404(api: httpx.AsyncClient) -> None:
    r = await api.get("/v1/context/users/nobody")
    assert r.status_code == 404
    assert "nobody" in r.json()["detail"]


@pytest.mark.parametrize(
    ("body", "status", "named"),
    [
        ([1, 2], 422, "JSON object"),
        ("text", 422, "JSON object"),
        (None, 422, "JSON object"),
        ({"tier": "gold"}, 422, "'tier'"),
        ({"attributes": [1]}, 422, "attributes"),
        ({"preferences": "fr"}, 422, "preferences"),
        ({"attributes": {"blob": "x" * 20_000}}, 422, "attributes.blob"),
        ({"attributes": {f"k{i}": i for i in range(250)}}, 422, "at most"),
    ],
)
async def test_bad_patches_are_refused_and_change_nothing(
    api: httpx.AsyncClient, body: object, status: int, named: str
) -> None:
    await patch(api, "u1", {"attributes": {"keep": True}})
    r = await patch(api, "u1", body)
    assert r.status_code == status, r.text
    assert named in r.json()["detail"]
    got = (await api.get("/v1/context/users/u1")).json()
    assert got["attributes"] == {"keep": True} and got["version"] == 1


async def test_a_profile_over_the_total_limit_is_refused(api: httpx.AsyncClient) -> None:
    for i in range(4):
        assert (await patch(api, "u1", {"attributes": {f"k{i}": "x" * 15_000}})).status_code in (
            200,
            201,
        )
    r = await patch(api, "u1", {"attributes": {"k9": "x" * 15_000}})
    assert r.status_code == 422 and "limit is 65536" in r.json()["detail"]
    assert "k9" not in (await api.get("/v1/context/users/u1")).json()["attributes"]


async def test_malformed_json_wrong_media_type_and_bad_ids(api: httpx.AsyncClient) -> None:
    r = await api.patch("/v1/context/users/u1", content=b"{nope", headers=MERGE)
    assert r.status_code == 400 and "malformed JSON" in r.json()["detail"]
    r = await api.patch(
        "/v1/context/users/u1",
        content=b'{"attributes": {}}',
        headers={"Content-Type": "text/plain"},
    )
    assert r.status_code == 415 and "merge-patch+json" in r.json()["detail"]
    r = await patch(api, "bad%20id", {"attributes": {"a": 1}})
    assert r.status_code == 422 and "user_id" in r.json()["detail"]
    assert (await api.get("/v1/context/users/u1")).status_code == 404


async def test_users_are_partitioned_by_tenant_and_scoped(api: httpx.AsyncClient) -> None:
    await patch(api, "u1", {"attributes": {"tier": "gold"}})
    other = await make_key(api, ["context:read", "context:write", "users:assert"], tenant="globex")
    r = await api.get("/v1/context/users/u1", headers=as_key(other))
    assert r.status_code == 404
    r = await api.patch(
        "/v1/context/users/u1", json={"attributes": {"tier": "x"}}, headers=as_key(other)
    )
    assert r.status_code == 201  # globex's own u1, another record entirely
    assert (await api.get("/v1/context/users/u1")).json()["attributes"] == {"tier": "gold"}
    reader = await make_key(api, ["context:read"])
    r = await api.patch(
        "/v1/context/users/u1", json={"attributes": {"tier": "x"}}, headers=as_key(reader)
    )
    assert r.status_code == 403
    assert (await api.get("/v1/context/users/u1", headers=as_key(reader))).status_code == 200


async def test_fields_selection_applies(api: httpx.AsyncClient) -> None:
    await patch(api, "u1", {"attributes": {"tier": "gold"}, "preferences": {"language": "fr"}})
    r = await api.get("/v1/context/users/u1?fields=preferences.language,version")
    assert r.json() == {"preferences": {"language": "fr"}, "version": 1}


async def test_patches_are_audited_and_announced_without_the_user_id(
    api: httpx.AsyncClient,
) -> None:
    await patch(api, "alice@example.com", {"attributes": {"tier": "gold"}})
    audit = (await api.get("/v1/audit", params={"action": "context.user.patched"})).json()
    records = audit["records"]
    assert len(records) == 1
    assert "alice" not in str(records)
    assert records[0]["details"]["changed"] == ["attributes.tier"]
    events = (await api.get("/v1/events", params={"type": "meshgate.context.updated"})).json()
    assert len(events["events"]) == 1
    event = events["events"][0]
    assert "alice" not in str(event["data"].get("user_ref")) and "alice" not in event["subject"]


async def test_a_patch_that_changes_nothing_writes_nothing(api: httpx.AsyncClient) -> None:
    r = await patch(api, "ghost", {})
    assert r.status_code == 404 and "creates nothing" in r.json()["detail"]
    assert (await patch(api, "ghost", {"attributes": {"a": None}})).status_code == 404
    assert (await api.get("/v1/context/users/ghost")).status_code == 404
    await patch(api, "u1", {"attributes": {"a": 1}})
    r = await patch(api, "u1", {"attributes": {"a": 1, "b": None}})
    assert r.status_code == 200 and r.json()["version"] == 1 and r.headers["etag"] == '"1"'
    events = (await api.get("/v1/events", params={"type": "meshgate.context.updated"})).json()
    assert len(events["events"]) == 1


async def test_concurrent_patches_lose_no_update(api: httpx.AsyncClient) -> None:
    import asyncio

    await patch(api, "u1", {"attributes": {"start": True}})
    results = await asyncio.gather(
        *(patch(api, "u1", {"attributes": {f"k{i}": i}}) for i in range(10))
    )
    assert [r.status_code for r in results] == [200] * 10, [r.text for r in results]
    got = (await api.get("/v1/context/users/u1")).json()
    assert got["attributes"] == {"start": True, **{f"k{i}": i for i in range(10)}}
    assert got["version"] == 11
    assert sorted(r.json()["version"] for r in results) == list(range(2, 12))
