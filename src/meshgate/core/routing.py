"""Route helpers every API module uses: scope checks as dependencies, so the route table
itself says what each route needs, and hot-route declarations.

A hot route is declared once with :func:`hot_route`: the declaration registers the route with
the framework (so the OpenAPI document and the auth matrix see it, with the same scope) and
in a list the gateway's direct dispatcher (``meshgate.gateway.fast_routes``) serves from.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, Request, Response

from meshgate.auth import SCOPES, Principal
from meshgate.core import scope as request_scope
from meshgate.errors import Forbidden, Unauthenticated

Endpoint = Callable[[Request], Awaitable[Response]]
PARAM = re.compile(r"\{([a-zA-Z_][a-zA-Z0-9_]*)\}")


class RequireScope:
    def __init__(self, scope: str):
        if scope not in SCOPES:
            raise ValueError(f"unknown scope {scope!r}")
        self.scope = scope

    async def __call__(self, request: Request) -> Principal:
        principal = current_principal(request)
        if not principal.has(self.scope):
            raise Forbidden(f"this API key lacks the '{self.scope}' scope")
        return principal


def require(scope: str) -> Any:
    """``dependencies=[require("context:read")]`` on a route or router."""
    return Depends(RequireScope(scope))


def current_principal(request: Request) -> Principal:
    principal = request_scope.principal(request.scope)
    if principal is None:
        raise Unauthenticated("missing API key")
    return principal


def route_scope(route: Any) -> str | None:
    """The scope a route requires, read from its dependencies (used by the auth matrix).

    ``route`` is a ``fastapi.routing.RouteContext`` (from ``iter_route_contexts``), which
    carries the router-level dependencies too, or an ``APIRoute``.
    """
    for dep in getattr(route, "dependencies", None) or []:
        if isinstance(dep.dependency, RequireScope):
            return dep.dependency.scope
    inner = getattr(route, "route", None) or route
    dependant = getattr(inner, "dependant", None)
    pending = list(dependant.dependencies) if dependant is not None else []
    while pending:
        sub = pending.pop()
        if isinstance(sub.call, RequireScope):
            return sub.call.scope
        pending.extend(sub.dependencies)
    return None


@dataclass
class HotRoute:
    method: str
    path: str
    scope: str | None
    endpoint: Endpoint
    deprecated: bool = False
    openapi_extra: dict[str, Any] | None = None
    pattern: re.Pattern[str] | None = field(default=None, repr=False)


def hot_route(
    router: APIRouter,
    method: str,
    path: str,
    endpoint: Endpoint,
    *,
    scope: str | None,
    hot: list[HotRoute],
    **openapi: Any,
) -> HotRoute:
    """Declare ``endpoint`` on ``router`` (for the document) and in ``hot`` (for dispatch)."""
    dependencies = [require(scope)] if scope else []
    router.add_api_route(
        path,
        endpoint,
        methods=[method],
        dependencies=dependencies,
        response_class=Response,
        **openapi,
    )
    full = router.prefix + path
    pattern = None
    if PARAM.search(full):
        pattern = re.compile("^" + PARAM.sub(r"(?P<\1>[^/]+)", full) + "$")
    route = HotRoute(
        method,
        full,
        scope,
        endpoint,
        openapi.get("deprecated", False) or False,
        openapi.get("openapi_extra"),
        pattern,
    )
    hot.append(route)
    return route
