"""A direct dispatcher for the hot routes (inference), in front of the framework's router.

The framework matches a request by scanning every route in turn, which costs tens of
microseconds per request on a table of this size. Hot routes are declared once with
:func:`hot_route`: the declaration registers the route with the framework (so the OpenAPI
document and the auth matrix see it, with the same scope) and with :class:`FastRoutes`, which
finds it by a dict lookup (static paths) or one regex (templated paths) and calls the
endpoint with the same scope check and the same error mapping.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from meshgate.auth import Principal
from meshgate.errors import Forbidden, MeshgateError
from meshgate.gateway.middleware.auth import PRINCIPAL
from meshgate.gateway.problems import response_parts
from meshgate.gateway.security import require

log = logging.getLogger("meshgate.gateway")
Endpoint = Callable[[Request], Awaitable[Response]]
PARAM = re.compile(r"\{([a-zA-Z_][a-zA-Z0-9_]*)\}")


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


class FastRoutes:
    def __init__(self, app: ASGIApp, *, routes: list[HotRoute]):
        self.app = app
        self.static = {(r.method, r.path): r for r in routes if r.pattern is None}
        self.templated = [r for r in routes if r.pattern is not None]

    def match(self, method: str, path: str) -> tuple[HotRoute, dict[str, str]] | None:
        route = self.static.get((method, path))
        if route is not None:
            return route, {}
        for route in self.templated:
            if route.method == method and (m := route.pattern.match(path)):  # type: ignore[union-attr]
                return route, m.groupdict()
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        found = self.match(scope["method"], scope["path"]) if scope["type"] == "http" else None
        if found is None:
            await self.app(scope, receive, send)
            return
        route, params = found
        scope["route"] = route
        scope["path_params"] = params
        try:
            principal: Principal | None = scope.get(PRINCIPAL)
            if route.scope and (principal is None or not principal.has(route.scope)):
                raise Forbidden(f"this API key lacks the '{route.scope}' scope")
            response = await route.endpoint(Request(scope, receive, send))
        except MeshgateError as exc:
            response = error_response(exc, scope)
        except Exception:
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            response = error_response(MeshgateError("internal error; see the server log"), scope)
        await response(scope, receive, send)


def error_response(error: MeshgateError, scope: Scope) -> Response:
    status, headers, body = response_parts(error, scope)
    response = Response(body, status_code=status)
    response.raw_headers = headers
    return response
