"""Flags evaluated in process: targeting rules, a sticky fractional split, reasons."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from meshgate.delivery.flags import Flag, FlagSpec
from meshgate.delivery.rules import RuleError, compile_rule


def ctx(**attributes: object) -> dict[str, object]:
    return {"attributes": attributes, "preferences": {"language": "de"}, "user_id": "u1"}


@pytest.mark.parametrize(
    ("rule", "context", "expected"),
    [
        ("attributes.tier == 'gold'", ctx(tier="gold"), True),
        ("attributes.tier == 'gold'", ctx(tier="silver"), False),
        ("attributes.tier == 'gold'", {}, False),
        ("preferences.language in ['de', 'fr']", ctx(), True),
        ("preferences.language not in ['de', 'fr']", ctx(), False),
        ("attributes.age >= 18 and attributes.age < 65", ctx(age=30), True),
        ("attributes.age >= 18 and attributes.age < 65", ctx(age=70), False),
        ("18 <= attributes.age < 65", ctx(age=17), False),
        ("not attributes.beta or attributes.tier == 'gold'", ctx(beta=True, tier="x"), False),
        ("attributes.beta == true", ctx(beta=True), True),
        ("attributes.score > -1.5", ctx(score=0), True),
        ("attributes.age > 'x'", ctx(age=3), False),  # cannot hold, not an error
        ("attributes.address.city == 'Berlin'", ctx(address={"city": "Berlin"}), True),
        ("attributes.address.city == 'Berlin'", ctx(address="Berlin"), False),
    ],
)
def test_rules_read_the_context(rule: str, context: dict[str, object], expected: bool) -> None:
    assert compile_rule(rule)(context) is expected


@pytest.mark.parametrize(
    "rule",
    [
        "__import__('os').system('true')",
        "attributes.tier.upper() == 'GOLD'",
        "attributes['tier'] == 'gold'",
        "(lambda: 1)()",
        "secrets.key == 1",
        "attributes.tier ==",
        "[x for x in attributes]",
        "attributes.a if attributes.b else 1",
        "not " * 100 + "true",
    ],
)
def test_anything_beyond_the_language_is_refused(rule: str) -> None:
    with pytest.raises(RuleError):
        compile_rule(rule)


SPEC = {
    "variants": {"on": True, "off": False},
    "default": "off",
    "rules": [{"if": "attributes.tier == 'gold'", "variant": "on"}],
    "fractional": {"on": 10, "off": 90},
}


def test_rules_first_then_a_sticky_split_then_the_default() -> None:
    flag = Flag("new-ui", FlagSpec.model_validate(SPEC))
    gold = flag.evaluate(ctx(tier="gold"), "u1")
    assert (gold.value, gold.variant, gold.reason) == (True, "on", "TARGETING_MATCH")
    split = flag.evaluate(ctx(), "u1")
    assert split.reason == "SPLIT"
    assert all(flag.evaluate(ctx(), "u1") == split for _ in range(5))
    assert flag.evaluate(ctx(), None).reason == "DEFAULT"
    off = Flag("new-ui", FlagSpec.model_validate({**SPEC, "enabled": False}))
    assert off.evaluate(ctx(tier="gold"), "u1").reason == "DISABLED"
    static = Flag("x", FlagSpec.model_validate({"variants": {"a": "x"}, "default": "a"}))
    assert static.evaluate({}, "u").reason == "STATIC"


def test_a_ten_ninety_split_holds_over_ten_thousand_users() -> None:
    flag = Flag("new-ui", FlagSpec.model_validate({**SPEC, "rules": []}))
    on = sum(flag.evaluate({}, f"user-{i}").variant == "on" for i in range(10_000))
    # Binomial(10,000, 0.1): sd = 30, so +-150 is five standard deviations.
    assert 850 <= on <= 1150
    # Another flag with the same split buckets users independently of this one.
    other = Flag("other", FlagSpec.model_validate({**SPEC, "rules": []}))
    both = sum(
        flag.evaluate({}, f"user-{i}").variant == "on" == other.evaluate({}, f"user-{i}").variant
        for i in range(10_000)
    )
    assert both < 300  # about 100 if independent, about 1,000 if the same users


def test_raising_a_share_only_moves_users_into_it() -> None:
    ten = Flag("k", FlagSpec.model_validate({**SPEC, "rules": []}))
    thirty = Flag(
        "k", FlagSpec.model_validate({**SPEC, "rules": [], "fractional": {"on": 30, "off": 70}})
    )
    for i in range(2000):
        if ten.evaluate({}, f"u{i}").variant == "on":
            assert thirty.evaluate({}, f"u{i}").variant == "on"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"default": "maybe"}, "maybe"),
        ({"fractional": {"on": 50, "off": 40}}, "sum to 100"),
        ({"fractional": {"on": 110, "off": -10}}, "between 0 and 100"),
        ({"rules": [{"if": "attributes.tier ===", "variant": "on"}]}, "does not parse"),
        ({"rules": [{"if": "open('x')", "variant": "on"}]}, "Call"),
        ({"variants": {"on": True, "off": "no"}}, "one kind"),
        ({"variants": {"bad name!": True, "off": False}}, "variants"),
    ],
)
def test_bad_flags_are_refused_naming_the_problem(change: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        FlagSpec.model_validate({**SPEC, **change})
    assert field in str(caught.value)
