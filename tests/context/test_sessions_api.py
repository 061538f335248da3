"""Sessions and interactions through the HTTP surface."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from meshgate.config import Settings
from tests.conftest import app_client
from tests.context.conftest import Clock, as_key, make_key


async def open_session(api: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    r = await api.post("/v1/context/sessions", json={"user_id": "u1", "channel": "web", **body})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def say(api: httpx.AsyncClient, sid: str, content: str, role: str = "user") -> httpx.Response:
    return await api.post(
        f"/v1/context/sessions/{sid}/interactions",
        json={"role": role, "content": content, "metadata": {"len": len(content)}},
    )


async def test_a_session_is_created_and_read(api: httpx.AsyncClient) -> None:
    s = await open_session(api, ttl_seconds=600, state={"step": "greeting"})
    assert s["session_id"].startswith("ses_") and s["user_id"] == "u1"
    assert s["channel"] == "web" and s["ttl_seconds"] == 600
    got = (await api.get(f"/v1/context/sessions/{s['session_id']}")).json()
    assert got["state"] == {"step": "greeting"} and got["interactions_count"] == 0


async def test_a_session_is_404_after_its_ttl(api: httpx.AsyncClient, app_clock: Clock) -> None:
    s = await open_session(api, ttl_seconds=30)
    sid = s["session_id"]
    assert (await say(api, sid, "hello")).status_code == 201
    await app_clock.advance(29)
    assert (await api.get(f"/v1/context/sessions/{sid}")).status_code == 200
    await app_clock.advance(2)
    r = await api.get(f"/v1/context/sessions/{sid}")
    assert r.status_code == 404 and "expired" in r.json()["detail"]
    assert (await api.get(f"/v1/context/sessions/{sid}/interactions")).status_code == 404
    assert (await say(api, sid, "still there?")).status_code == 404


async def test_interactions_come_newest_last_with_a_limit(api: httpx.AsyncClient) -> None:
    sid = (await open_session(api))["session_id"]
    for n in range(5):
        assert (
            await say(api, sid, f"m{n}", role="user" if n % 2 == 0 else "assistant")
        ).status_code == 201
    r = await api.get(f"/v1/context/sessions/{sid}/interactions", params={"limit": 3})
    items = r.json()["interactions"]
    assert [i["content"] for i in items] == ["m2", "m3", "m4"]
    assert [i["role"] for i in items] == ["user", "assistant", "user"]
    assert items[0]["metadata"] == {"len": 2}
    all_items = (await api.get(f"/v1/context/sessions/{sid}/interactions")).json()["interactions"]
    assert len(all_items) == 5


@pytest.fixture
async def small_history(make_settings: Any, app_clock: Clock) -> AsyncIterator[httpx.AsyncClient]:
    settings: Settings = make_settings(context={"history_limit": 3, "max_interaction_bytes": 100})
    async with app_client(settings, clock=app_clock) as c:
        yield c


async def test_history_is_bounded_by_the_configuration(small_history: httpx.AsyncClient) -> None:
    api = small_history
    sid = (await open_session(api))["session_id"]
    for n in range(6):
        await say(api, sid, f"m{n}")
    r = await api.get(f"/v1/context/sessions/{sid}/interactions", params={"limit": 100})
    assert [i["content"] for i in r.json()["interactions"]] == ["m3", "m4", "m5"]
    r = await say(api, sid, "x" * 200)
    assert r.status_code == 422 and "limit is 100" in r.json()["detail"]
    r = await api.get(f"/v1/context/sessions/{sid}/interactions")
    assert [i["content"] for i in r.json()["interactions"]] == ["m3", "m4", "m5"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"role": "robot", "content": "x"}, "role"),
        ({"role": "user", "content": 5}, "content"),
        ({"role": "user"}, "content"),
        ({"role": "user", "content": "x", "metadata": [1]}, "metadata"),
        ({"role": "user", "content": "x", "extra": 1}, "extra"),
    ],
)
async def test_bad_interactions_are_refused_and_change_nothing(
    api: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    sid = (await open_session(api))["session_id"]
    await say(api, sid, "first")
    r = await api.post(f"/v1/context/sessions/{sid}/interactions", json=body)
    assert r.status_code == 422, r.text
    assert field in r.json()["detail"]
    items = (await api.get(f"/v1/context/sessions/{sid}/interactions")).json()["interactions"]
    assert [i["content"] for i in items] == ["first"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user_id": "u1", "channel": "fax"}, "channel"),
        ({"user_id": "u1", "ttl_seconds": 0}, "ttl_seconds"),
        ({"user_id": "u1", "ttl_seconds": 10**9}, "ttl_seconds"),
        ({"channel": "web"}, "user_id"),
        ({"user_id": "has space"}, "user_id"),
        ({"user_id": "u1", "state": "x"}, "state"),
    ],
)
async def test_bad_sessions_are_refused_and_nothing_is_created(
    api: httpx.AsyncClient, body: dict[str, Any], field: str
) -> None:
    r = await api.post("/v1/context/sessions", json=body)
    assert r.status_code == 422, r.text
    assert field in r.json()["detail"]
    assert (await api.get("/v1/context/users/u1/export")).status_code == 404


async def test_an_unknown_session_is_404_and_limits_are_checked(api: httpx.AsyncClient) -> None:
    assert (await api.get("/v1/context/sessions/ses_nope")).status_code == 404
    assert (await say(api, "ses_nope", "hi")).status_code == 404
    # an unknown session is a 404 whatever the body, so a bad body reveals nothing either
    r = await api.post("/v1/context/sessions/ses_nope/interactions", json={})
    assert r.status_code == 404
    sid = (await open_session(api))["session_id"]
    r = await api.get(f"/v1/context/sessions/{sid}/interactions", params={"limit": 0})
    assert r.status_code == 422 and "limit" in r.json()["detail"]


async def test_sessions_belong_to_their_tenant(api: httpx.AsyncClient) -> None:
    sid = (await open_session(api))["session_id"]
    other = as_key(await make_key(api, ["context:read", "context:write"], tenant="globex"))
    assert (await api.get(f"/v1/context/sessions/{sid}", headers=other)).status_code == 404
    r = await api.post(
        f"/v1/context/sessions/{sid}/interactions",
        json={"role": "user", "content": "x"},
        headers=other,
    )
    assert r.status_code == 404
    assert (await api.get(f"/v1/context/sessions/{sid}")).json()["interactions_count"] == 0


async def test_a_sessions_state_is_merge_patched(api: httpx.AsyncClient, app_clock: Clock) -> None:
    s = await open_session(api, ttl_seconds=60, state={"step": 1, "cart": ["a"], "lang": "fr"})
    sid = s["session_id"]
    await api.get(f"/v1/context/sessions/{sid}")  # cached before the change
    r = await api.patch(
        f"/v1/context/sessions/{sid}",
        json={"state": {"step": 2, "cart": None}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["state"] == {"step": 2, "lang": "fr"}
    assert (await api.get(f"/v1/context/sessions/{sid}")).json()["state"] == {
        "step": 2,
        "lang": "fr",
    }
    assert r.json()["expires_at"] == s["expires_at"]  # a patch does not extend the session

    for bad, named in (
        ({"user_id": "u2"}, "'state'"),
        ({"state": [1]}, "state"),
        ([1], "'state'"),
    ):
        r = await api.patch(f"/v1/context/sessions/{sid}", json=bad)
        assert r.status_code == 422 and named in r.json()["detail"], r.text
    r = await api.patch(f"/v1/context/sessions/{sid}", json={"state": {"blob": "x" * 20_000}})
    assert r.status_code == 422 and "limit" in r.json()["detail"]
    assert (await api.get(f"/v1/context/sessions/{sid}")).json()["state"] == {
        "step": 2,
        "lang": "fr",
    }

    assert (await api.patch("/v1/context/sessions/ses_nope", json={})).status_code == 404
    await app_clock.advance(61)
    r = await api.patch(f"/v1/context/sessions/{sid}", json={"state": {"step": 3}})
    assert r.status_code == 404
