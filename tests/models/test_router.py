"""The traffic split: proportions, stickiness, and canary increases that only move users to it."""

from __future__ import annotations

from collections import Counter

from meshgate.models.router import Split, fallback_chain

USERS = [f"user-{i}" for i in range(10_000)]


def assignment(split: dict[str, int]) -> dict[str, str]:
    compiled = Split.of("support-chat", split)
    return {user: compiled.pick(user) for user in USERS}


def test_split_matches_weights_within_statistical_tolerance() -> None:
    counts = Counter(assignment({"1": 90, "2": 10}).values())
    # Binomial(10000, 0.1): standard deviation 30; 4 sigma is 120.
    assert abs(counts["2"] - 1000) < 120
    three = Counter(assignment({"a": 50, "b": 30, "c": 20}).values())
    for version, share in (("a", 5000), ("b", 3000), ("c", 2000)):
        assert abs(three[version] - share) < 200


def test_same_user_keeps_the_same_version_while_the_split_is_unchanged() -> None:
    first = assignment({"1": 90, "2": 10})
    again = assignment({"2": 10, "1": 90})  # order of the mapping is irrelevant
    assert first == again


def test_raising_a_canary_only_moves_users_toward_it() -> None:
    before = assignment({"1": 90, "2": 10})
    after = assignment({"1": 70, "2": 30})
    moved = [u for u in USERS if before[u] != after[u]]
    assert all(before[u] == "1" and after[u] == "2" for u in moved)
    assert abs(len(moved) - 2000) < 200  # a fifth of the users moved, no more


def test_three_versions_canary_takes_share_from_others_proportionally() -> None:
    before = assignment({"a": 60, "b": 30, "c": 10})
    after = assignment({"a": 40, "b": 20, "c": 40})
    for user in USERS:
        if before[user] != after[user]:
            assert after[user] == "c", (user, before[user], after[user])


def test_zero_weight_gets_nobody_and_no_key_is_random_by_weight() -> None:
    assert set(assignment({"1": 100, "2": 0}).values()) == {"1"}
    values = iter([0.05, 0.5, 0.95])
    split = Split("m", ("1", "2"), (90.0, 10.0), rand=lambda: next(values))
    assert [split.pick(None) for _ in range(3)] == ["1", "1", "2"]


def test_fallback_chain_puts_the_primary_first_once() -> None:
    assert fallback_chain("2", ["1", "2", "3"]) == ["2", "1", "3"]
