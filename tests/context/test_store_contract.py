"""The ContextStore contract: every behaviour, run against memory, SQLite and real Redis."""

from __future__ import annotations

import asyncio

from meshgate.context.base import ContextStore
from meshgate.context.model import Interaction, Session, UserProfile
from tests.context.conftest import Clock


def profile(user_id: str, version: int, **attrs: object) -> UserProfile:
    return UserProfile(user_id, dict(attrs), {"language": "fr"}, version, 1_700_000_000.0 + version)


def session(sid: str, user_id: str, clock: Clock, ttl: float = 60) -> Session:
    now = clock()
    return Session(sid, user_id, "web", int(ttl) or 1, {"step": 1}, now, now + ttl)


def turn(n: int) -> Interaction:
    return Interaction("user", f"message {n}", {"n": n}, 1_700_000_000.0 + n)


async def test_a_user_is_written_and_read_back(store: ContextStore) -> None:
    assert await store.get_user("acme", "u1") is None
    assert await store.put_user("acme", profile("u1", 1, tier="gold"))
    got = await store.get_user("acme", "u1")
    assert got == profile("u1", 1, tier="gold")


async def test_writes_are_compare_and_set_on_the_version(store: ContextStore) -> None:
    assert await store.put_user("acme", profile("u1", 1, tier="gold"))
    assert not await store.put_user("acme", profile("u1", 1, tier="silver"))
    assert not await store.put_user("acme", profile("u1", 3, tier="silver"))
    assert (await store.get_user("acme", "u1")) == profile("u1", 1, tier="gold")
    assert await store.put_user("acme", profile("u1", 2, tier="silver"))
    assert (await store.get_user("acme", "u1")) == profile("u1", 2, tier="silver")


async def test_concurrent_writers_of_one_version_see_exactly_one_win(store: ContextStore) -> None:
    await store.put_user("acme", profile("u1", 1))
    results = await asyncio.gather(
        *(store.put_user("acme", profile("u1", 2, n=i)) for i in range(8))
    )
    assert sum(results) == 1


async def test_the_tenant_is_a_hard_partition(store: ContextStore, clock: Clock) -> None:
    await store.put_user("acme", profile("u1", 1, tier="gold"))
    await store.create_session("acme", session("s1", "u1", clock))
    await store.put_policy("acme", "model:a", ["preferences.language"])
    assert await store.get_user("globex", "u1") is None
    assert await store.get_session("globex", "s1") is None
    assert not await store.append_interactions("globex", "s1", [turn(1)], keep=10)
    assert (await store.export_user("globex", "u1")).empty
    assert (await store.erase_user("globex", "u1")).records == 0
    assert await store.get_policy("globex", "model:a") is None
    assert await store.list_policies("globex") == {}
    assert await store.get_user("acme", "u1") is not None


async def test_sessions_keep_their_interactions_newest_last_and_bounded(
    store: ContextStore, clock: Clock
) -> None:
    await store.create_session("acme", session("s1", "u1", clock))
    for n in range(5):
        assert await store.append_interactions("acme", "s1", [turn(n)], keep=3)
    assert await store.append_interactions("acme", "s1", [turn(5), turn(6)], keep=3)
    view = await store.get_session("acme", "s1", last=10)
    assert view is not None
    assert [i.content for i in view.interactions] == ["message 4", "message 5", "message 6"]
    assert view.interactions[-1] == turn(6)
    view = await store.get_session("acme", "s1", last=2)
    assert view is not None and [i.metadata["n"] for i in view.interactions] == [5, 6]
    view = await store.get_session("acme", "s1")
    assert view is not None and view.interactions == () and view.session.state == {"step": 1}


async def test_a_session_expires_after_its_ttl(store: ContextStore, clock: Clock) -> None:
    await store.create_session("acme", session("short", "u1", clock, ttl=0.3))
    await store.create_session("acme", session("long", "u1", clock, ttl=60))
    assert await store.append_interactions("acme", "short", [turn(1)], keep=5)
    assert await store.get_session("acme", "short") is not None
    await clock.advance(0.4)
    assert await store.get_session("acme", "short") is None
    assert not await store.append_interactions("acme", "short", [turn(2)], keep=5)
    assert await store.get_session("acme", "long") is not None
    await store.purge_expired()
    export = await store.export_user("acme", "u1")
    assert [v.session.session_id for v in export.sessions] == ["long"]


async def test_an_unknown_session_takes_no_interactions(store: ContextStore) -> None:
    assert not await store.append_interactions("acme", "nope", [turn(1)], keep=5)
    assert await store.get_session("acme", "nope", last=5) is None


async def test_the_hot_path_reads_profile_and_session_together(
    store: ContextStore, clock: Clock
) -> None:
    await store.put_user("acme", profile("u1", 1, tier="gold"))
    await store.create_session("acme", session("s1", "u1", clock))
    await store.append_interactions("acme", "s1", [turn(1), turn(2)], keep=5)
    user, view = await store.get_context("acme", "u1", "s1", last=1)
    assert user == profile("u1", 1, tier="gold")
    assert view is not None and view.interactions == (turn(2),)
    assert await store.get_context("acme", "ghost", "nope", last=3) == (None, None)
    user, view = await store.get_context("acme", "u1", None, last=3)
    assert user is not None and view is None


async def test_export_holds_everything_on_the_user(store: ContextStore, clock: Clock) -> None:
    await store.put_user("acme", profile("u1", 1, tier="gold"))
    await store.create_session("acme", session("s1", "u1", clock))
    await store.create_session("acme", session("s2", "u2", clock))
    await store.append_interactions("acme", "s1", [turn(1), turn(2)], keep=5)
    export = await store.export_user("acme", "u1")
    assert export.profile == profile("u1", 1, tier="gold")
    assert [v.session.session_id for v in export.sessions] == ["s1"]
    assert export.sessions[0].interactions == (turn(1), turn(2))


async def test_erasure_removes_profile_sessions_and_interactions(
    store: ContextStore, clock: Clock
) -> None:
    await store.put_user("acme", profile("u1", 1))
    await store.create_session("acme", session("s1", "u1", clock))
    await store.create_session("acme", session("s2", "u1", clock))
    await store.create_session("acme", session("other", "u2", clock))
    await store.append_interactions("acme", "s1", [turn(1), turn(2)], keep=5)
    await store.append_interactions("acme", "other", [turn(3)], keep=5)
    erased = await store.erase_user("acme", "u1")
    assert erased.records == 1 + 2 + 2
    assert sorted(erased.session_ids) == ["s1", "s2"]
    assert await store.get_user("acme", "u1") is None
    assert await store.get_session("acme", "s1", last=5) is None
    assert await store.get_session("acme", "s2") is None
    assert (await store.export_user("acme", "u1")).empty
    assert (await store.erase_user("acme", "u1")).records == 0
    # a recreated session id starts with no history from the erased one
    await store.create_session("acme", session("s1", "u1", clock))
    view = await store.get_session("acme", "s1", last=5)
    assert view is not None and view.interactions == ()
    other = await store.get_session("acme", "other", last=5)
    assert other is not None and len(other.interactions) == 1


async def test_policies_are_stored_per_consumer(store: ContextStore) -> None:
    assert await store.get_policy("acme", "model:a") is None
    await store.put_policy("acme", "model:b", ["attributes.*"])
    await store.put_policy("acme", "model:a", ["preferences.language"])
    await store.put_policy("acme", "model:a", ["preferences.*", "interactions.last:2"])
    assert await store.get_policy("acme", "model:a") == ["preferences.*", "interactions.last:2"]
    assert await store.list_policies("acme") == {
        "model:a": ["preferences.*", "interactions.last:2"],
        "model:b": ["attributes.*"],
    }
    assert await store.delete_policy("acme", "model:a")
    assert not await store.delete_policy("acme", "model:a")
    assert await store.get_policy("acme", "model:a") is None


async def test_a_live_sessions_state_is_replaced(store: ContextStore, clock: Clock) -> None:
    await store.create_session("acme", session("s1", "u1", clock, ttl=0.3))
    assert await store.put_session_state("acme", "s1", {"step": 2, "cart": ["a"]})
    view = await store.get_session("acme", "s1")
    assert view is not None and view.session.state == {"step": 2, "cart": ["a"]}
    assert view.session.channel == "web" and view.session.user_id == "u1"
    assert not await store.put_session_state("globex", "s1", {"step": 9})
    assert not await store.put_session_state("acme", "nope", {"step": 9})
    await clock.advance(0.4)
    assert not await store.put_session_state("acme", "s1", {"step": 3})
    assert await store.get_session("acme", "s1") is None
