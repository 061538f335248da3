"""Erasure and export: once erased, no read path, export, resolve or cache shows the user."""

from __future__ import annotations

import httpx

from meshgate.context.cache import MISSING
from meshgate.context.service import ContextService
from tests.context.conftest import UNSET

ALLOW = ["attributes.*", "preferences.*", "session.*", "interactions.last:10"]


def service_of(api: httpx.AsyncClient) -> ContextService:
    service: ContextService = api.app.state.services.context  # type: ignore[attr-defined]
    return service


async def seed(api: httpx.AsyncClient, user: str) -> list[str]:
    await api.patch(
        f"/v1/context/users/{user}",
        json={"attributes": {"email": f"{user}@example.com"}, "preferences": {"language": "fr"}},
    )
    sids = []
    for channel in ("web", "mobile"):
        r = await api.post("/v1/context/sessions", json={"user_id": user, "channel": channel})
        sid = r.json()["session_id"]
        for n in range(3):
            await api.post(
                f"/v1/context/sessions/{sid}/interactions",
                json={"role": "user", "content": f"{user} says {n}"},
            )
        sids.append(sid)
    return sids


async def test_export_returns_everything_held_on_the_user(api: httpx.AsyncClient) -> None:
    sids = await seed(api, "alice")
    await seed(api, "bob")
    export = (await api.get("/v1/context/users/alice/export")).json()
    assert export["user_id"] == "alice"
    assert export["profile"]["attributes"] == {"email": "alice@example.com"}
    assert [s["session_id"] for s in export["sessions"]] == sids
    assert [i["content"] for i in export["sessions"][0]["interactions"]] == [
        "alice says 0",
        "alice says 1",
        "alice says 2",
    ]
    assert "bob" not in str(export)
    assert (await api.get("/v1/context/users/nobody/export")).status_code == 404


async def test_erasure_leaves_nothing_readable_anywhere(api: httpx.AsyncClient) -> None:
    sids = await seed(api, "alice")
    await seed(api, "bob")
    service = service_of(api)
    await service.policies.put("default", "model:all", ALLOW)
    # warm every cache the hot path uses
    assert (await api.get("/v1/context/users/alice")).status_code == 200
    for sid in sids:
        assert (await api.get(f"/v1/context/sessions/{sid}")).status_code == 200
    warm = await service.resolve_for_consumer(
        tenant="default", consumer=UNSET, user_id="alice", session_id=sids[0], registered=ALLOW
    )
    assert warm["attributes"]["email"] == "alice@example.com"

    r = await api.delete("/v1/context/users/alice")
    assert r.status_code == 200
    receipt = r.json()
    assert receipt["user_id"] == "alice" and receipt["erased_at"].endswith("Z")
    assert receipt["records"] == 1 + 2 + 6
    assert receipt["event_keys_shredded"] >= 1

    assert (await api.get("/v1/context/users/alice")).status_code == 404
    assert (await api.get("/v1/context/users/alice/export")).status_code == 404
    for sid in sids:
        assert (await api.get(f"/v1/context/sessions/{sid}")).status_code == 404
        assert (await api.get(f"/v1/context/sessions/{sid}/interactions")).status_code == 404
        r = await api.post("/v1/context/resolve", json={"consumer": "model:all", "session_id": sid})
        assert r.status_code == 404
        assert (
            await service.resolve_for_consumer(
                tenant="default", consumer=UNSET, user_id=None, session_id=sid, registered=ALLOW
            )
            == {}
        )
    r = await api.post("/v1/context/resolve", json={"consumer": "model:all", "user_id": "alice"})
    assert r.status_code == 404
    assert (
        await service.resolve_for_consumer(
            tenant="default", consumer=UNSET, user_id="alice", session_id=None, registered=ALLOW
        )
        == {}
    )
    for key in [("default", "u", "alice")] + [("default", "s", s) for s in sids]:
        assert service.cache.get(key) in (MISSING, None)
    assert await service.store.get_user("default", "alice") is None
    assert (await service.store.export_user("default", "alice")).empty
    # bob is untouched
    assert (await api.get("/v1/context/users/bob")).status_code == 200
    assert len((await api.get("/v1/context/users/bob/export")).json()["sessions"]) == 2


async def test_erasure_shreds_personal_event_data_and_is_announced(api: httpx.AsyncClient) -> None:
    await seed(api, "alice")
    await seed(api, "bob")
    await api.delete("/v1/context/users/alice")
    events = (await api.get("/v1/events", params={"type": "meshgate.context.updated"})).json()
    personal = {
        str(e["data"].get("personal"))
        for e in events["events"]
        if e["data"].get("what") == "profile"
    }
    assert personal == {str({"erased": True}), str({"user_id": "bob"})}
    erased = (await api.get("/v1/events", params={"type": "meshgate.context.erased"})).json()
    assert len(erased["events"]) == 1
    event = erased["events"][0]
    assert event["data"]["records"] == 9
    assert "alice" not in str(event)
    audit = (await api.get("/v1/audit", params={"action": "context.user.erased"})).json()
    assert len(audit["records"]) == 1 and "alice" not in str(audit["records"])


async def test_a_second_erasure_finds_nothing_and_a_new_profile_starts_fresh(
    api: httpx.AsyncClient,
) -> None:
    await seed(api, "alice")
    assert (await api.delete("/v1/context/users/alice")).status_code == 200
    again = await api.delete("/v1/context/users/alice")
    assert again.status_code == 404 and "nothing is held" in again.json()["detail"]
    assert (await api.delete("/v1/context/users/never-seen")).status_code == 404
    r = await api.patch("/v1/context/users/alice", json={"preferences": {"language": "en"}})
    assert r.status_code == 201
    got = r.json()
    assert got["version"] == 1 and got["attributes"] == {}


async def test_erasure_needs_the_write_scope_and_stays_in_the_tenant(
    api: httpx.AsyncClient,
) -> None:
    from tests.context.conftest import as_key, make_key

    await seed(api, "alice")
    reader = as_key(await make_key(api, ["context:read"]))
    assert (await api.delete("/v1/context/users/alice", headers=reader)).status_code == 403
    # Even a key that speaks for users reaches only its own tenant's.
    other = as_key(
        await make_key(api, ["context:write", "context:read", "users:assert"], tenant="globex")
    )
    assert (await api.delete("/v1/context/users/alice", headers=other)).status_code == 404
    assert (await api.get("/v1/context/users/alice")).status_code == 200


async def test_a_user_known_only_to_the_event_log_is_still_erased(api: httpx.AsyncClient) -> None:
    events = api.app.state.services.events  # type: ignore[attr-defined]
    await events.publish(
        "meshgate.prediction.made",
        tenant="default",
        data={"model": "m"},
        personal={"prompt": "carol's question"},
        user_id="carol",
    )
    r = await api.delete("/v1/context/users/carol")
    assert r.status_code == 200
    assert r.json()["records"] == 0 and r.json()["event_keys_shredded"] == 1
    made = (await api.get("/v1/events", params={"type": "meshgate.prediction.made"})).json()
    assert made["events"][0]["data"]["personal"] == {"erased": True}
