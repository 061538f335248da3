"""Scope checks as route dependencies, so the route table itself says what each route needs."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request

from meshgate.auth import SCOPES, Principal
from meshgate.errors import Forbidden, Unauthenticated
from meshgate.gateway.middleware.auth import PRINCIPAL


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
    principal: Principal | None = request.scope.get(PRINCIPAL)
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
