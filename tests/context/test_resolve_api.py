"""Policies and resolve: a consumer sees exactly what its policy allows, nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from meshgate.config import Settings
from meshgate.context.service import ContextService
from tests.conftest import app_client
from tests.context.conftest import UNSET, as_key, make_key


async def seed(api: httpx.AsyncClient) -> str:
    await api.patch(
        "/v1/context/users/u1",
        json={
            "attributes": {"tier": "gold", "address": {"city": "Lyon", "street": "1 rue X"}},
            "preferences": {"language": "fr", "tone": "formal"},
        },
    )
    r = await api.post(
        "/v1/context/sessions", json={"user_id": "u1", "channel": "voice", "state": {"step": 2}}
    )
    sid = str(r.json()["session_id"])
    for n in range(4):
        await api.post(
            f"/v1/context/sessions/{sid}/interactions", json={"role": "user", "content": f"m{n}"}
        )
    return sid


async def resolve(api: httpx.AsyncClient, consumer: str, **ids: Any) -> httpx.Response:
    return await api.post("/v1/context/resolve", json={"consumer": consumer, **ids})


async def set_policy(api: httpx.AsyncClient, consumer: str, allow: list[str]) -> httpx.Response:
    return await api.put(f"/v1/context/policies/{consumer}", json={"allow": allow})


async def test_a_consumer_sees_exactly_what_its_policy_allows(api: httpx.AsyncClient) -> None:
    sid = await seed(api)
    r = await set_policy(
        api,
        "model:chat",
        ["preferences.language", "attributes.address.city", "interactions.last:2"],
    )
    assert r.status_code == 200
    r = await resolve(api, "model:chat", user_id="u1", session_id=sid)
    assert r.status_code == 200
    assert r.json() == {
        "consumer": "model:chat",
        "user_id": "u1",
        "session_id": sid,
        "context": {
            "attributes": {"address": {"city": "Lyon"}},
            "preferences": {"language": "fr"},
            "interactions": [
                {
                    "role": "user",
                    "content": "m2",
                    "metadata": {},
                    "time": r.json()["context"]["interactions"][0]["time"],
                },
                {
                    "role": "user",
                    "content": "m3",
                    "metadata": {},
                    "time": r.json()["context"]["interactions"][1]["time"],
                },
            ],
        },
    }


async def test_wildcards_and_session_fields(api: httpx.AsyncClient) -> None:
    sid = await seed(api)
    await set_policy(api, "model:w", ["attributes.*", "session.channel", "session.state.step"])
    ctx = (await resolve(api, "model:w", session_id=sid)).json()["context"]
    assert ctx == {
        "attributes": {"tier": "gold", "address": {"city": "Lyon", "street": "1 rue X"}},
        "session": {"channel": "voice", "state": {"step": 2}},
    }


async def test_deny_by_default(api: httpx.AsyncClient) -> None:
    sid = await seed(api)
    r = await resolve(api, "model:unknown", user_id="u1", session_id=sid)
    assert r.status_code == 200 and r.json()["context"] == {}
    await set_policy(api, "model:x", [])
    assert (await resolve(api, "model:x", user_id="u1")).json()["context"] == {}


async def test_a_policy_change_applies_at_once_and_delete_denies(api: httpx.AsyncClient) -> None:
    await seed(api)
    await set_policy(api, "model:x", ["preferences.language"])
    assert (await resolve(api, "model:x", user_id="u1")).json()["context"] == {
        "preferences": {"language": "fr"}
    }
    await set_policy(api, "model:x", ["preferences.tone"])
    assert (await resolve(api, "model:x", user_id="u1")).json()["context"] == {
        "preferences": {"tone": "formal"}
    }
    assert (await api.delete("/v1/context/policies/model:x")).status_code == 204
    assert (await resolve(api, "model:x", user_id="u1")).json()["context"] == {}
    assert (await api.delete("/v1/context/policies/model:x")).status_code == 404


async def test_a_session_of_another_user_is_never_mixed_in(api: httpx.AsyncClient) -> None:
    sid = await seed(api)
    await api.patch("/v1/context/users/u2", json={"preferences": {"language": "en"}})
    await set_policy(api, "model:x", ["preferences.*", "interactions.last:5"])
    r = await resolve(api, "model:x", user_id="u2", session_id=sid)
    assert r.status_code == 404
    service: ContextService = api.app.state.services.context  # type: ignore[attr-defined]
    ctx = await service.resolve_for_consumer(
        tenant="default",
        consumer=UNSET,
        user_id="u2",
        session_id=sid,
        registered=["preferences.*", "interactions.last:5"],
    )
    assert ctx == {"preferences": {"language": "en"}}


async def test_unknown_ids_are_404_and_bad_requests_name_the_field(api: httpx.AsyncClient) -> None:
    await seed(api)
    await set_policy(api, "model:x", ["preferences.*"])
    assert (await resolve(api, "model:x", user_id="nobody")).status_code == 404
    assert (await resolve(api, "model:x", user_id="u1", session_id="ses_gone")).status_code == 404
    r = await resolve(api, "model:x")
    assert r.status_code == 422 and "user_id" in r.json()["detail"]
    r = await api.post("/v1/context/resolve", json={"user_id": "u1"})
    assert r.status_code == 422 and "consumer" in r.json()["detail"]


@pytest.mark.parametrize(
    ("allow", "named"),
    [
        (["secrets.password"], "secrets.password"),
        (["preferences"], "preferences"),
        (["interactions.last:0"], "interactions.last:0"),
        (["interactions.first:2"], "interactions.first:2"),
        (["attributes.*.x"], "'*'"),
        ([""], "non-empty"),
        ("preferences.*", "allow"),
    ],
)
async def test_bad_policies_are_refused_and_the_old_one_stays(
    api: httpx.AsyncClient, allow: Any, named: str
) -> None:
    await set_policy(api, "model:x", ["preferences.language"])
    r = await api.put("/v1/context/policies/model:x", json={"allow": allow})
    assert r.status_code == 422, r.text
    assert named in r.json()["detail"]
    got = (await api.get("/v1/context/policies/model:x")).json()
    assert got == {"consumer": "model:x", "allow": ["preferences.language"], "source": "api"}


async def test_only_admins_set_policies_and_tenants_have_their_own(api: httpx.AsyncClient) -> None:
    await seed(api)
    writer = as_key(await make_key(api, ["context:read", "context:write"]))
    r = await api.put(
        "/v1/context/policies/model:x", json={"allow": ["attributes.*"]}, headers=writer
    )
    assert r.status_code == 403
    await set_policy(api, "model:x", ["attributes.tier"])
    other_admin = as_key(await make_key(api, ["admin"], tenant="globex"))
    assert (await api.get("/v1/context/policies", headers=other_admin)).json() == {"policies": []}
    r = await api.post(
        "/v1/context/resolve", json={"consumer": "model:x", "user_id": "u1"}, headers=other_admin
    )
    assert r.status_code == 404  # globex has no u1
    listed = (await api.get("/v1/context/policies", headers=writer)).json()["policies"]
    assert listed == [{"consumer": "model:x", "allow": ["attributes.tier"], "source": "api"}]


@pytest.fixture
async def configured(make_settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    settings: Settings = make_settings(
        context={"policies": {"model:cfg": ["preferences.language", "interactions.last:1"]}}
    )
    async with app_client(settings) as c:
        yield c


async def test_policies_from_the_configuration_apply_until_overridden(
    configured: httpx.AsyncClient,
) -> None:
    api = configured
    sid = await seed(api)
    ctx = (await resolve(api, "model:cfg", session_id=sid)).json()["context"]
    assert ctx["preferences"] == {"language": "fr"}
    assert [i["content"] for i in ctx["interactions"]] == ["m3"]
    got = (await api.get("/v1/context/policies/model:cfg")).json()
    assert got["source"] == "config"
    await set_policy(api, "model:cfg", ["attributes.tier"])
    ctx = (await resolve(api, "model:cfg", session_id=sid)).json()["context"]
    assert ctx == {"attributes": {"tier": "gold"}}


def test_a_bad_policy_in_the_configuration_stops_the_start(make_settings: Any) -> None:
    import asyncio

    from meshgate.context.model import InvalidContext

    settings: Settings = make_settings(context={"policies": {"model:bad": ["nope.x"]}})

    async def start() -> None:
        async with app_client(settings):
            pass

    with pytest.raises(InvalidContext, match=r"nope\.x"):
        asyncio.run(start())


async def test_the_inference_path_resolves_with_policies_compiled_once(
    api: httpx.AsyncClient,
) -> None:
    sid = await seed(api)
    service: ContextService = api.app.state.services.context  # type: ignore[attr-defined]
    allow = ["preferences.language", "interactions.last:1"]
    first = await service.resolve_for_consumer(
        tenant="default", consumer=UNSET, user_id="u1", session_id=sid, registered=allow
    )
    assert first["preferences"] == {"language": "fr"}
    assert [i["content"] for i in first["interactions"]] == ["m3"]
    assert service.compiler.compile(list(allow)) is service.compiler.compile(tuple(allow))
    await service.append_interactions(
        tenant="default", session_id=sid, turns=[("user", "q", None), ("assistant", "a", {"x": 1})]
    )
    again = await service.resolve_for_consumer(
        tenant="default", consumer=UNSET, user_id=None, session_id=sid, registered=allow
    )
    assert again["preferences"] == {"language": "fr"}
    assert again["interactions"][0]["content"] == "a"
    none = await service.resolve_for_consumer(
        tenant="default", consumer=UNSET, user_id="ghost", session_id=None, registered=allow
    )
    assert none == {}


async def test_changing_a_resolved_bundle_does_not_change_the_cache(api: httpx.AsyncClient) -> None:
    sid = await seed(api)
    service: ContextService = api.app.state.services.context  # type: ignore[attr-defined]
    allow = ["attributes.*", "interactions.last:1"]
    first = await service.resolve_for_consumer(
        tenant="default", consumer=UNSET, user_id="u1", session_id=sid, registered=allow
    )
    first["attributes"]["tier"] = "tampered"
    first["interactions"][0]["content"] = "tampered"
    again = await service.resolve_for_consumer(
        tenant="default", consumer=UNSET, user_id="u1", session_id=sid, registered=allow
    )
    assert again["attributes"]["tier"] == "gold" and again["interactions"][0]["content"] == "m3"


async def test_a_wider_policy_after_a_narrow_one_still_sees_its_whole_window(
    api: httpx.AsyncClient,
) -> None:
    sid = await seed(api)  # four interactions: m0..m3
    service: ContextService = api.app.state.services.context  # type: ignore[attr-defined]

    async def window(n: int) -> list[str]:
        ctx = await service.resolve_for_consumer(
            tenant="default",
            consumer=UNSET,
            user_id=None,
            session_id=sid,
            registered=[f"interactions.last:{n}"],
        )
        return [i["content"] for i in ctx["interactions"]]

    assert await window(1) == ["m3"]
    assert await window(3) == ["m1", "m2", "m3"]
    assert await window(10) == ["m0", "m1", "m2", "m3"]
    assert await window(2) == ["m2", "m3"]
    r = await api.get(f"/v1/context/sessions/{sid}/interactions", params={"limit": 50})
    assert len(r.json()["interactions"]) == 4
