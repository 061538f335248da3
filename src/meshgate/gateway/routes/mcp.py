"""``/mcp``: the Context Mesh over the Model Context Protocol (streamable HTTP, stateless).

The same keys, scopes, tenants and consumer policies apply as on REST: the gateway's auth
middleware has authenticated the bearer key before a message reaches this server, and every
resource and tool checks the scope its REST twin requires.

- resource ``context://users/{user_id}/as/{consumer}``: what the consumer's policy lets it see
  of the user (``context:read``), exactly as ``POST /v1/context/resolve`` answers;
- resource ``context://about``: how to address the above, what each tool needs;
- tools ``remember_preference`` and ``add_interaction`` (``context:write``), ``forget_user``
  (erasure everywhere, the scope of ``DELETE /v1/context/users/{id}``).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceError, ToolError
from starlette.requests import Request
from starlette.routing import Route

from meshgate.auth import Principal
from meshgate.auth.identity import writes_for
from meshgate.context.service import ContextService
from meshgate.core.scope import PRINCIPAL
from meshgate.core.state import service_of
from meshgate.errors import BackendUnavailable, Forbidden, MeshgateError, Unauthenticated

PATH = "/mcp"
ERASE_SCOPE = "context:write"  # the scope of DELETE /v1/context/users/{user_id}


ABOUT = """# Meshgate Context Mesh

Read `context://users/{user_id}/as/{consumer}`: what the consumer's context policy lets it see
of the user (deny by default; the same answer as `POST /v1/context/resolve`). Needs a key with
`context:read`.

Tools `remember_preference`, `add_interaction` and `forget_user` need `context:write` and,
for a user other than the caller itself, `users:assert` (a key speaking for its users);
`forget_user` erases the user everywhere and cannot be undone.
"""


class McpError(ToolError, ResourceError):
    """What a client is told when a call is refused: the platform error's own detail
    (the SDK hides the text of any other exception)."""


def _request(ctx: Context) -> Request:
    request = ctx.request_context.request
    if not isinstance(request, Request):
        raise McpError("this server only speaks streamable HTTP")
    return request


def _principal(ctx: Context, scope: str) -> tuple[Principal, ContextService]:
    request = _request(ctx)
    principal = request.scope.get(PRINCIPAL)
    if principal is None:
        raise McpError(Unauthenticated("missing API key").detail)
    if not principal.has(scope):
        raise McpError(Forbidden(f"this API key lacks the '{scope}' scope").detail)
    try:
        service = service_of(request, ContextService)
    except KeyError as exc:
        raise McpError(BackendUnavailable("the Context Mesh is not running").detail) from exc
    return principal, service


def _writes_for(principal: Principal, user_id: str) -> None:
    try:
        writes_for(principal, user_id)
    except MeshgateError as exc:
        raise McpError(exc.detail) from exc


async def _run(work: Any) -> Any:
    try:
        return await work
    except MeshgateError as exc:
        raise McpError(exc.detail) from exc


def build_server() -> MCPServer:
    server = MCPServer(
        "meshgate-context",
        instructions="The Context Mesh of Meshgate: read what a named consumer may see of a "
        "user; remember preferences, add interactions, forget a user.",
    )

    @server.resource(
        "context://users/{user_id}/as/{consumer}",
        name="user-context",
        description="A user's context as the named consumer's policy lets it see it.",
        mime_type="application/json",
    )
    async def user_context(user_id: str, consumer: str, ctx: Context) -> str:
        principal, service = _principal(ctx, "context:read")
        seen = await _run(service.resolve_for(principal.tenant, consumer, user_id, None))
        body = {"consumer": consumer, "user_id": user_id, "context": seen}
        return json.dumps(body, default=str)

    @server.resource(
        "context://about",
        name="about",
        description="How to read a user's context here, and which scopes the tools need.",
        mime_type="text/markdown",
    )
    def about() -> str:
        return ABOUT

    @server.tool(description="Remember a preference of a user (creates the user when new).")
    async def remember_preference(
        user_id: str, key: str, value: Any, ctx: Context
    ) -> dict[str, Any]:
        principal, service = _principal(ctx, "context:write")
        _writes_for(principal, user_id)
        patch = {"preferences": {key: value}}
        profile, _ = await _run(
            service.patch_user(
                principal.tenant, user_id, patch, if_match=None, actor=principal.key_id
            )
        )
        result: dict[str, Any] = profile.to_api()
        return result

    @server.tool(
        description="Add an interaction (role and content) to a session; without a session_id "
        "a new session of the user is opened. Returns the session id."
    )
    async def add_interaction(
        user_id: str,
        role: str,
        content: str,
        ctx: Context,
        session_id: str | None = None,
    ) -> dict[str, Any]:
        principal, service = _principal(ctx, "context:write")
        _writes_for(principal, user_id)
        if session_id is None:
            session = await _run(
                service.create_session(
                    principal.tenant,
                    user_id,
                    channel="api",
                    ttl_seconds=None,
                    state=None,
                    actor=principal.key_id,
                )
            )
            session_id = session.session_id
        else:
            view = await _run(service.get_session(principal.tenant, session_id))
            if view.session.user_id != user_id:
                raise McpError(f"session {session_id!r} is not a session of {user_id!r}")
        await _run(
            service.add_interactions(
                principal.tenant, session_id, [(role, content, None)], actor=principal.key_id
            )
        )
        return {"session_id": session_id, "user_id": user_id}

    @server.tool(
        description="Forget a user everywhere (GDPR erasure): profile, sessions, and the "
        "personal parts of their events. Cannot be undone."
    )
    async def forget_user(user_id: str, ctx: Context) -> dict[str, Any]:
        principal, service = _principal(ctx, ERASE_SCOPE)
        _writes_for(principal, user_id)
        receipt: dict[str, Any] = await _run(
            service.erase_user(principal.tenant, user_id, actor=principal.key_id)
        )
        return receipt

    return server


class McpSurface:
    """Serves ``/mcp`` (``router()``) and runs its session manager from ``start`` to ``close``."""

    def __init__(self) -> None:
        self.server: MCPServer | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def router(self) -> APIRouter:
        from mcp.server.transport_security import TransportSecuritySettings

        self.server = build_server()
        # Stateless JSON answers: any node of a cluster serves any message. The bearer key
        # guards every message, so a browser's ambient credentials cannot be rebound here.
        app = self.server.streamable_http_app(
            streamable_http_path=PATH,
            stateless_http=True,
            json_response=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        endpoint = next(r for r in app.routes if isinstance(r, Route) and r.path == PATH)
        router = APIRouter()
        router.routes.append(Route(PATH, endpoint.app, include_in_schema=False))
        return router

    async def start(self) -> None:
        if self.server is None:
            return
        manager = self.server.session_manager
        ready = asyncio.Event()

        # The manager's task group must be entered and left in one task; the app's lifespan
        # may start and stop in different ones (an in-process test client does).
        async def hold() -> None:
            async with manager.run():
                ready.set()
                await self._stop.wait()

        self._task = asyncio.create_task(hold(), name="mcp-sessions")
        waiting = asyncio.create_task(ready.wait())
        await asyncio.wait({self._task, waiting}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        if self._task.done():
            self._task.result()  # it failed to start: raise why

    async def close(self) -> None:
        if self._task is not None:
            self._stop.set()
            await self._task
            self._task = None
