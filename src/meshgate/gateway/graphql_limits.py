"""Bounds on one GraphQL request, checked before strawberry sees it.

A document is parsed once here with a token limit (so a 10,000-deep query or JSON body is a
400, never a crash), then measured: selection depth, aliased fields, and an estimated cost,
the number of items it may return (``events(limit: N)`` costs N). Over a limit is a 400 that
names it; within them, the cost beyond one request is charged to the caller's request buckets,
so 2,000 aliased event pages are not "one request".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import Request
from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
    parse,
)

from meshgate.core.routing import current_principal
from meshgate.core.state import service_of
from meshgate.errors import BadRequest, RateLimited
from meshgate.gateway.middleware.rate_limit import buckets
from meshgate.limits import Bucket, Limiter
from meshgate.security.config import GraphQLLimits

MAX_TOKENS = 5000
LIST_COSTS = {"events": (100, 1000), "session": (20, 100), "models": (20, 1000)}
"""Fields returning many items: (default count, largest count)."""


class QueryRefused(BadRequest):
    pass


@dataclass
class Measure:
    depth: int = 0
    aliases: int = 0
    cost: int = 0


async def guard(request: Request) -> None:
    """FastAPI dependency of ``/graphql``: refuses what is too big, charges what is not."""
    if request.method not in ("GET", "POST"):
        return
    limits = service_of(request, GraphQLLimits)
    query, variables = await _read(request)
    if query is None:
        return  # strawberry answers a missing query itself
    try:
        document = parse(query, max_tokens=MAX_TOKENS)
    except GraphQLError as exc:
        raise QueryRefused(f"query: {exc.message}", param="query") from exc
    measured = measure(document, variables, limits)
    if measured.depth > limits.max_depth:
        raise QueryRefused(f"query: deeper than {limits.max_depth} levels", param="query")
    if measured.aliases > limits.max_aliases:
        raise QueryRefused(f"query: more than {limits.max_aliases} aliases", param="query")
    if measured.cost > limits.max_cost:
        raise QueryRefused(
            f"query: estimated cost {measured.cost} is over the limit {limits.max_cost}",
            param="query",
        )
    await charge(request, measured.cost // limits.cost_per_request)


async def _read(request: Request) -> tuple[str | None, dict[str, Any]]:
    if request.method == "GET":
        raw_vars = request.query_params.get("variables")
        return request.query_params.get("query"), _variables(raw_vars)
    body = await request.body()
    if not body or "json" not in request.headers.get("content-type", ""):
        return None, {}
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise QueryRefused(f"malformed JSON body: {exc}") from exc
    if not isinstance(data, dict):
        raise QueryRefused("the body must be a JSON object with a 'query'")
    query = data.get("query")
    if query is not None and not isinstance(query, str):
        raise QueryRefused("query must be a string", param="query")
    variables = data.get("variables")
    return query, variables if isinstance(variables, dict) else {}


def _variables(raw: str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        found = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise QueryRefused("variables must be JSON", param="variables") from exc
    return found if isinstance(found, dict) else {}


def measure(document: DocumentNode, variables: dict[str, Any], limits: GraphQLLimits) -> Measure:
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    result = Measure()
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            _walk(definition.selection_set, 1, result, fragments, variables, limits, ())
    return result


def _walk(
    selections: SelectionSetNode,
    depth: int,
    result: Measure,
    fragments: dict[str, FragmentDefinitionNode],
    variables: dict[str, Any],
    limits: GraphQLLimits,
    seen: tuple[str, ...],
) -> None:
    if depth > limits.max_depth:
        result.depth = max(result.depth, depth)
        return  # no need to look deeper: already refused
    for node in selections.selections:
        if isinstance(node, FieldNode):
            result.depth = max(result.depth, depth)
            result.aliases += node.alias is not None
            result.cost += _cost(node, variables)
            if node.selection_set is not None:
                _walk(node.selection_set, depth + 1, result, fragments, variables, limits, seen)
        elif isinstance(node, InlineFragmentNode):
            _walk(node.selection_set, depth, result, fragments, variables, limits, seen)
        elif isinstance(node, FragmentSpreadNode):
            name = node.name.value
            if name in seen or name not in fragments:
                raise QueryRefused(f"query: fragment {name} is unknown or cyclic", param="query")
            spread = fragments[name].selection_set
            _walk(spread, depth, result, fragments, variables, limits, (*seen, name))


def _cost(field: FieldNode, variables: dict[str, Any]) -> int:
    default_largest = LIST_COSTS.get(field.name.value)
    if default_largest is None:
        return 1
    default, largest = default_largest
    count: object = default
    for argument in field.arguments or ():
        if argument.name.value != "limit":
            continue
        value = argument.value
        if isinstance(value, IntValueNode):
            count = int(value.value)
        elif isinstance(value, VariableNode):
            count = variables.get(value.name.value, largest)
        else:
            count = largest
    if not isinstance(count, int):
        count = largest
    return max(1, min(count, largest))


async def charge(request: Request, extra: int) -> None:
    """Counts a costly query as ``1 + extra`` requests against the caller's request limits."""
    if extra <= 0:
        return
    principal = current_principal(request)
    limiter = service_of(request, Limiter)  # type: ignore[type-abstract]
    costly = [Bucket(b.key, b.limit, b.period, cost=extra) for b in buckets(principal)[:2]]
    decision = await limiter.check(costly)
    if not decision.allowed:
        raise RateLimited(
            "this query costs more than the requests left this minute; retry later",
            headers=decision.headers(),
        )
