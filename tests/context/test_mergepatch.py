"""RFC 7396 merge patch: the examples of the RFC's appendix A, and the profile rules."""

from __future__ import annotations

from typing import Any

import pytest

from meshgate.context.config import ContextConfig
from meshgate.context.mergepatch import apply_patch, merge
from meshgate.context.model import InvalidContext

RFC_EXAMPLES = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "result"), RFC_EXAMPLES)
def test_the_rfc_examples(target: Any, patch: Any, result: Any) -> None:
    assert merge(target, patch) == result


def test_merge_does_not_change_its_inputs() -> None:
    target = {"a": {"b": 1}}
    merge(target, {"a": {"b": None, "c": 2}})
    assert target == {"a": {"b": 1}}


def test_a_section_set_to_null_is_emptied() -> None:
    attrs, prefs = apply_patch({"a": 1}, {"l": "fr"}, {"attributes": None}, ContextConfig())
    assert attrs == {} and prefs == {"l": "fr"}


def test_limits_name_the_offending_member() -> None:
    limits = ContextConfig(max_value_bytes=64, max_keys=2)
    with pytest.raises(InvalidContext, match=r"preferences\.bio is 102 bytes"):
        apply_patch({}, {}, {"preferences": {"bio": "x" * 100}}, limits)
    with pytest.raises(InvalidContext, match="at most 2"):
        apply_patch({"a": 1}, {"b": 2}, {"attributes": {"c": 3}}, limits)
    assert apply_patch({"a": 1}, {"b": 2}, {"attributes": {"a": None, "c": 3}}, limits) == (
        {"c": 3},
        {"b": 2},
    )
