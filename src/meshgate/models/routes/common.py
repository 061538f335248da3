"""What every model route needs: the service, the caller, and the inference headers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import Request, Response
from starlette.types import Receive, Scope, Send

from meshgate.auth.identity import end_user, session_user
from meshgate.context.service import ContextService
from meshgate.core import scope as request_scope
from meshgate.core.routing import current_principal
from meshgate.core.state import service_of as registered
from meshgate.errors import NotFound
from meshgate.models.inference import Caller, Served
from meshgate.models.service import ModelService


def service_of(request: Request) -> ModelService:
    return registered(request, ModelService)


async def caller_of(request: Request, user: str | None = None) -> Caller:
    """The caller and the end user it has proven (403 for a user or session it has not)."""
    principal = current_principal(request)
    scope = request.scope
    user_id = session_id = version = None
    no_cache = False
    for name, value in scope["headers"]:
        if name[:2] != b"x-":
            if name == b"cache-control":
                no_cache = b"no-cache" in value or b"no-store" in value
            continue
        if name == b"x-user-id":
            user_id = value.decode("latin-1")
        elif name == b"x-session-id":
            session_id = value.decode("latin-1")
        elif name == b"x-model-version":
            version = value.decode("latin-1")
    if user_id is not None:
        user_id = end_user(principal, user_id, param="x-user-id")
    else:
        user_id = end_user(principal, user, param="user")
    if session_id is not None:
        owner = await session_owner(request, principal.tenant, session_id)
        if owner is not None:
            user_id = session_user(principal, user_id, owner)
    return Caller(
        tenant=principal.tenant,
        key_id=principal.key_id,
        is_admin=principal.is_admin,
        user_id=user_id,
        session_id=session_id,
        version=version,
        trace=request_scope.trace(scope),
        charge=request_scope.charge_tokens(scope),
        models=principal.models,
        no_cache=no_cache,
    )


async def session_owner(request: Request, tenant: str, session_id: str) -> str | None:
    """The user a session is bound to; None when there is no such (live) session."""
    context = registered(request, ContextService)
    try:
        return (await context.get_session(tenant, session_id)).session.user_id
    except NotFound:
        return None


def served_headers(request: Request, model: str, served: Served) -> dict[str, str]:
    """The response headers of a served inference; also tells the gateway's access log,
    metrics and trace which model and version answered."""
    request_scope.set_served_model(request.scope, model, served.version)
    headers = {"x-model-version": served.version, "x-prediction-id": served.prediction_id}
    if served.cache is not None:
        headers["x-cache"] = served.cache
    if served.validation:
        headers["x-meshgate-validation"] = "; ".join(served.validation)
    return headers


class RelayResponse(Response):
    """Server-sent events passed through as they arrive.

    The relay runs beside a watcher of the client's connection: when the client leaves, the
    relay is cancelled at once (even while the upstream is silent), which closes the upstream
    connection instead of leaving it open.
    """

    def __init__(self, chunks: AsyncIterator[bytes], headers: dict[str, str]):
        # Response.__init__ would render a body; a relay has none of its own.
        self.chunks = chunks
        self.status_code = 200
        self.background = None
        self.raw_headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
            *((k.encode(), v.encode()) for k, v in headers.items()),
        ]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            relay = asyncio.ensure_future(self._relay(send))
            watch = asyncio.ensure_future(self._watch(receive))
            try:
                await asyncio.wait((relay, watch), return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (relay, watch):
                    task.cancel()
                await asyncio.gather(relay, watch, return_exceptions=True)
        finally:
            await self.chunks.aclose()  # type: ignore[attr-defined]

    async def _relay(self, send: Send) -> None:
        async for chunk in self.chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    @staticmethod
    async def _watch(receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
