"""Policy compilation and selection, and the cache's guard against racing invalidations."""

from __future__ import annotations

import pytest

from meshgate.context.cache import MISSING, ContextCache
from meshgate.context.model import Interaction, InvalidContext, Session, SessionView, UserProfile
from meshgate.context.policy import PolicyCompiler, build

PROFILE = UserProfile(
    "u1",
    {"tier": "gold", "address": {"city": "Lyon", "zip": "69001"}, "score": 0},
    {"language": "fr", "tone": "formal"},
    3,
    1.0,
)
VIEW = SessionView(
    Session("s1", "u1", "web", 60, {"step": 1}, 1.0, 61.0),
    tuple(Interaction("user", f"m{n}", {}, float(n)) for n in range(6)),
)


def test_overlapping_paths_merge_and_wildcards_win() -> None:
    policy = build(["attributes.address.city", "attributes.address.*", "attributes.tier"], 50)
    assert policy.apply(PROFILE, None) == {
        "attributes": {"address": {"city": "Lyon", "zip": "69001"}, "tier": "gold"}
    }


def test_falsy_values_are_kept_and_missing_members_left_out() -> None:
    policy = build(["attributes.score", "attributes.nope", "preferences.nope.deeper"], 50)
    assert policy.apply(PROFILE, None) == {"attributes": {"score": 0}, "preferences": {}}


def test_interactions_take_the_largest_window_capped_by_the_history() -> None:
    assert build(["interactions.last:2", "interactions.last:4"], 50).last == 4
    assert build(["interactions.last:999"], 5).last == 5
    assert build(["interactions.*"], 7).last == 7
    ctx = build(["interactions.last:2"], 50).apply(PROFILE, VIEW)
    assert [i["content"] for i in ctx["interactions"]] == ["m4", "m5"]


def test_nothing_allowed_means_nothing_returned() -> None:
    assert build([], 50).apply(PROFILE, VIEW) == {}
    assert build(["session.channel"], 50).apply(PROFILE, None) == {}


def test_a_policy_is_compiled_once() -> None:
    compiler = PolicyCompiler(50)
    first = compiler.compile(["preferences.language"])
    assert compiler.compile(("preferences.language",)) is first
    assert compiler.compile(["preferences.tone"]) is not first


@pytest.mark.parametrize("bad", [["attributes"], ["a.b"], ["attributes.a b"], [["x"]], [None]])
def test_bad_paths_are_refused(bad: list[object]) -> None:
    with pytest.raises(InvalidContext):
        PolicyCompiler(50).compile(bad)  # type: ignore[arg-type]


def test_a_fill_that_raced_an_invalidation_is_dropped() -> None:
    cache = ContextCache(10, 60)
    key = ("t", "u", "u1")
    epoch = cache.epoch  # a reader starts reading the store...
    cache.invalidate(key)  # ...a write lands meanwhile...
    cache.fill(key, "stale", epoch)  # ...and the stale read must not be cached
    assert cache.get(key) is MISSING
    cache.fill(key, "fresh", cache.epoch)
    assert cache.get(key) == "fresh"


def test_the_cache_is_bounded_and_entries_expire() -> None:
    now = [0.0]
    cache = ContextCache(3, 10, clock=lambda: now[0])
    for n in range(5):
        cache.fill(("t", "u", str(n)), n, cache.epoch)
    assert len(cache) == 3
    assert cache.get(("t", "u", "0")) is MISSING and cache.get(("t", "u", "4")) == 4
    now[0] = 11
    assert cache.get(("t", "u", "4")) is MISSING
    assert ContextCache(0, 10).get(("t", "u", "x")) is MISSING
