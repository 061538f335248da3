"""Targeting rules of feature flags: a small expression language over a user's context.

``attributes.tier == 'gold' and preferences.language in ['de', 'fr']``. The text is parsed
by Python's own parser into a syntax tree, and only a whitelist of node kinds is compiled
into plain closures: comparisons, ``and``/``or``/``not``, literals, lists and dotted paths.
Nothing is ever evaluated as code, so a rule cannot call, import or reach an attribute of
an object; a path only walks the dictionaries of the context it is given.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from typing import Any

Context = Mapping[str, Any]
Predicate = Callable[[Context], bool]
Value = Callable[[Context], Any]
MAX_RULE_LENGTH = 2000
MAX_DEPTH = 32
ROOTS = frozenset({"attributes", "preferences", "user_id", "tenant"})
NAMED = {"true": True, "false": False, "null": None}
COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}


class RuleError(ValueError):
    """A rule that does not parse or uses what the language does not have."""


def compile_rule(text: str) -> Predicate:
    """The rule as a predicate over a context; raises :class:`RuleError` naming the problem."""
    if len(text) > MAX_RULE_LENGTH:
        raise RuleError(f"a rule is at most {MAX_RULE_LENGTH} characters")
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise RuleError(f"the rule does not parse: {exc.msg} at column {exc.offset}") from None
    value = _compile(tree.body, 0)

    def predicate(context: Context) -> bool:
        try:
            return bool(value(context))
        except TypeError:  # 'a' < 1 and the like: a rule that cannot hold for this user
            return False

    return predicate


def _compile(node: ast.AST, depth: int) -> Value:
    if depth > MAX_DEPTH:
        raise RuleError(f"the rule nests deeper than {MAX_DEPTH} levels")
    if isinstance(node, ast.BoolOp):
        parts = [_compile(v, depth + 1) for v in node.values]
        if isinstance(node.op, ast.And):
            return lambda c: all(p(c) for p in parts)
        return lambda c: any(p(c) for p in parts)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        inner = _compile(node.operand, depth + 1)
        return lambda c: not inner(c)
    if isinstance(node, ast.Compare):
        return _comparison(node, depth)
    if isinstance(node, ast.Constant) and isinstance(node.value, str | int | float | bool):
        constant = node.value
        return lambda c: constant
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub)
        and isinstance(node.operand, ast.Constant)
        and isinstance(node.operand.value, int | float)
        and not isinstance(node.operand.value, bool)
    ):
        negative = -node.operand.value
        return lambda c: negative
    if isinstance(node, ast.List | ast.Tuple):
        items = [_compile(e, depth + 1) for e in node.elts]
        return lambda c: [i(c) for i in items]
    if isinstance(node, ast.Name | ast.Attribute):
        return _path(node)
    raise RuleError(f"the rule uses {type(node).__name__}, which rules do not have")


def _comparison(node: ast.Compare, depth: int) -> Value:
    left = _compile(node.left, depth + 1)
    steps = []
    for op, right in zip(node.ops, node.comparators, strict=True):
        compare = COMPARE.get(type(op))
        if compare is None:
            raise RuleError(f"the rule uses the operator {type(op).__name__}")
        steps.append((compare, _compile(right, depth + 1)))

    def value(context: Context) -> bool:
        current = left(context)
        for compare, right in steps:
            other = right(context)
            if not compare(current, other):
                return False
            current = other
        return True

    return value


def _path(node: ast.Name | ast.Attribute) -> Value:
    parts: list[str] = []
    current: ast.AST = node
    while isinstance(current, ast.Attribute):
        parts.append(current.attr)
        current = current.value
    if not isinstance(current, ast.Name):
        raise RuleError("a path is names joined by dots, like attributes.tier")
    if not parts and current.id in NAMED:
        constant = NAMED[current.id]
        return lambda c: constant
    parts.append(current.id)
    parts.reverse()
    if parts[0] not in ROOTS:
        raise RuleError(
            f"unknown name {parts[0]!r}; a rule reads {', '.join(sorted(ROOTS))} "
            "or the literals true, false and null"
        )
    path = tuple(parts)

    def lookup(context: Context) -> Any:
        node: Any = context
        for part in path:
            if not isinstance(node, Mapping):
                return None
            node = node.get(part)
        return node

    return lookup
