"""Feature flags: their declaration, and the evaluation of one flag for one user.

A flag has named variants (booleans, strings, numbers or JSON objects, one kind per flag),
a default variant, targeting rules tried in order, and an optional fractional split. The
split is sticky per user: a user's bucket is a stable hash of the flag key and the user id,
so the same user gets the same variant on every node and every call, and raising one
variant's share only moves users into it. Reasons follow OpenFeature's vocabulary.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    field_validator,
    model_validator,
)

from meshgate.delivery.rules import Context, Predicate, RuleError, compile_rule
from meshgate.strictjson import RequestBody

VARIANT_NAME = r"^[A-Za-z0-9_.-]{1,64}$"
FLAG_KEY = r"^[a-z0-9][a-z0-9_.-]{0,63}$"
BUCKETS = 10_000
VariantName = Annotated[str, StringConstraints(pattern=VARIANT_NAME)]
Reason = Literal["STATIC", "TARGETING_MATCH", "SPLIT", "DEFAULT", "DISABLED"]


class FlagRule(RequestBody):
    model_config = ConfigDict(populate_by_name=True)

    when: str = Field(
        alias="if",
        min_length=1,
        max_length=2000,
        description="An expression over the user's context, e.g. attributes.tier == 'gold'.",
    )
    variant: str = Field(pattern=VARIANT_NAME)

    @field_validator("when")
    @classmethod
    def _parses(cls, value: str) -> str:
        try:
            compile_rule(value)
        except RuleError as exc:
            raise ValueError(str(exc)) from None
        return value


class FlagSpec(RequestBody):
    """``PUT /v1/flags/{key}``."""

    variants: dict[VariantName, JsonValue] = Field(min_length=1, max_length=50)
    default: str = Field(pattern=VARIANT_NAME)
    rules: list[FlagRule] = Field(default_factory=list, max_length=50)
    fractional: dict[str, int] | None = Field(
        None, description="Percent of users per variant, summing to 100; sticky per user."
    )
    enabled: bool = Field(True, description="A disabled flag answers its default variant.")
    description: str = Field("", max_length=1000)

    @model_validator(mode="after")
    def _consistent(self) -> FlagSpec:
        kind_of(self.variants)
        named = [self.default, *(r.variant for r in self.rules), *(self.fractional or {})]
        unknown = sorted({n for n in named if n not in self.variants})
        if unknown:
            raise ValueError(f"unknown variant(s) {', '.join(unknown)}; declare them in variants")
        if self.fractional is not None:
            if any(w < 0 or w > 100 for w in self.fractional.values()):
                raise ValueError("fractional weights are between 0 and 100")
            if sum(self.fractional.values()) != 100:
                raise ValueError("fractional weights must sum to 100")
        return self

    @property
    def kind(self) -> str:
        return kind_of(self.variants)


def kind_of(variants: dict[str, Any]) -> str:
    """boolean, string, number or object; every variant of a flag is of one kind."""
    kinds = {_kind(v) for v in variants.values()}
    if len(kinds) != 1 or None in kinds:
        raise ValueError(
            "every variant of a flag is of one kind: boolean, string, number or object"
        )
    return str(kinds.pop())


def _kind(value: Any) -> str | None:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict | list):
        return "object"
    return None


@dataclass(frozen=True, slots=True)
class Evaluation:
    value: Any
    variant: str
    reason: Reason

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "variant": self.variant, "reason": self.reason}


class Flag:
    """A flag compiled once for evaluation: rules as predicates, the split as bucket bounds."""

    def __init__(self, key: str, spec: FlagSpec):
        self.key = key
        self.spec = spec
        self._rules: list[tuple[Predicate, str]] = [
            (compile_rule(r.when), r.variant) for r in spec.rules
        ]
        self._split: list[tuple[int, str]] = []
        bound = 0
        for variant, weight in (spec.fractional or {}).items():
            bound += weight * BUCKETS // 100
            self._split.append((bound, variant))
        self._salt = key.encode() + b"\x00"

    def evaluate(self, context: Context, user_id: str | None) -> Evaluation:
        spec = self.spec
        if not spec.enabled:
            return self._answer(spec.default, "DISABLED")
        for predicate, variant in self._rules:
            if predicate(context):
                return self._answer(variant, "TARGETING_MATCH")
        if self._split and user_id is not None:
            return self._answer(self._bucket_variant(user_id), "SPLIT")
        static = not self._rules and not self._split
        return self._answer(spec.default, "STATIC" if static else "DEFAULT")

    def _bucket_variant(self, user_id: str) -> str:
        digest = hashlib.blake2b(self._salt + user_id.encode(), digest_size=8).digest()
        bucket = int.from_bytes(digest, "big") % BUCKETS
        for bound, variant in self._split:
            if bucket < bound:
                return variant
        return self._split[-1][1]

    def _answer(self, variant: str, reason: Reason) -> Evaluation:
        return Evaluation(self.spec.variants[variant], variant, reason)
