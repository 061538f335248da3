"""A direct dispatcher for the hot routes (inference), in front of the framework's router.

The framework matches a request by scanning every route in turn, which costs tens of
microseconds per request on a table of this size. Hot routes are declared once with
``meshgate.core.routing.hot_route``; :class:`FastRoutes` finds them by a dict lookup (static
paths) or one regex (templated paths) and calls the endpoint with the same scope check and the
same error mapping as the framework would.
"""

from __future__ import annotations

import logging

from fastapi import Request, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from meshgate.core import scope as request_scope
from meshgate.core.routing import HotRoute
from meshgate.errors import Forbidden, MeshgateError
from meshgate.gateway.problems import response_parts

log = logging.getLogger("meshgate.gateway")


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
            principal = request_scope.principal(scope)
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
