"""REST routes of the Context Mesh (``/v1/context``), as in the public API contract."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Path, Query, Request, Response

from meshgate.auth.identity import session_user, writes_for
from meshgate.context.model import ID_PATTERN, ContextNotFound, Json
from meshgate.context.schemas import (
    ErasureReceipt,
    ExportOut,
    InteractionCreate,
    InteractionOut,
    InteractionsOut,
    PoliciesOut,
    PolicyOut,
    PolicyPut,
    ResolveOut,
    ResolveRequest,
    SessionCreate,
    SessionCreated,
    SessionRead,
    UserOut,
    documented,
)
from meshgate.context.service import ContextService, etag
from meshgate.core.routing import HotRoute, current_principal, hot_route, require
from meshgate.core.state import service_of
from meshgate.errors import BadRequest, UnsupportedMediaType
from meshgate.strictjson import parse_json

router = APIRouter(prefix="/v1/context", tags=["context"])
READ = [require("context:read")]
WRITE = [require("context:write")]
PATCH_TYPES = ("application/merge-patch+json", "application/json")
PATH_USER_ID = {
    "name": "user_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": ID_PATTERN},
}
# Every identifier in a path is checked against ID_PATTERN; the document says so.
Id = Annotated[str, Path(pattern=ID_PATTERN)]
HOT: list[HotRoute] = []


def _service(request: Request) -> ContextService:
    return service_of(request, ContextService)


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status, headers, media_type="application/json")


async def _merge_patch(request: Request) -> Any:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in PATCH_TYPES:
        raise UnsupportedMediaType(
            f"send the patch as {' or '.join(PATCH_TYPES)}, not {media or 'no content type'}"
        )
    return parse_json(await request.body())


def _tenant_actor(request: Request) -> tuple[str, str]:
    principal = current_principal(request)
    return principal.tenant, principal.key_id


# --- users ------------------------------------------------------------------------------------


async def get_user(request: Request) -> Response:
    tenant, _ = _tenant_actor(request)
    user = await _service(request).get_user(tenant, request.path_params["user_id"])
    tag = etag(user.version)
    if tag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers={"ETag": tag})
    return _json(user.to_api(), headers={"ETag": tag})


# The read every channel makes: dispatched by the gateway's direct table, not the route scan.
hot_route(
    router,
    "GET",
    "/users/{user_id}",
    get_user,
    scope="context:read",
    hot=HOT,
    summary="A user's context, with an ETag",
    responses=documented(UserOut),
    openapi_extra={"parameters": [PATH_USER_ID]},
)


PATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            t: {
                "schema": {
                    "type": "object",
                    "properties": {
                        "attributes": {"type": ["object", "null"]},
                        "preferences": {"type": ["object", "null"]},
                    },
                    "additionalProperties": False,
                }
            }
            for t in PATCH_TYPES
        },
    }
}


@router.patch(
    "/users/{user_id}",
    dependencies=WRITE,
    openapi_extra=PATCH_BODY,
    summary="Merge-patch a user's attributes and preferences (creates the user if absent)",
    responses={**documented(UserOut), **documented(UserOut, 201), 412: {"description": "stale"}},
)
async def patch_user(user_id: Id, request: Request) -> Response:
    tenant, actor = _tenant_actor(request)
    writes_for(current_principal(request), user_id)
    patch = await _merge_patch(request)
    user, created = await _service(request).patch_user(
        tenant, user_id, patch, if_match=request.headers.get("if-match"), actor=actor
    )
    return _json(user.to_api(), 201 if created else 200, {"ETag": etag(user.version)})


@router.get(
    "/users/{user_id}/export",
    dependencies=READ,
    summary="Everything held on a user",
    responses=documented(ExportOut),
)
async def export_user(user_id: Id, request: Request) -> Response:
    tenant, _ = _tenant_actor(request)
    return _json(await _service(request).export_user(tenant, user_id))


@router.delete(
    "/users/{user_id}",
    dependencies=WRITE,
    summary="Erase a user everywhere",
    description="Removes the user's profile, sessions and interactions and destroys the key of"
    " the personal parts of their events (which then read as erased). Spend keeps its amounts"
    " (they are the tenant's cost) but no longer names the user: their calls count under no"
    " user in `GET /v1/spend?group_by=user`. The user's budget and its running total are"
    " removed, and answers the response cache stored for the user's requests (or sessions)"
    " are deleted, never served again. 404 when nothing is held on the user anywhere.",
    responses=documented(ErasureReceipt),
)
async def erase_user(user_id: Id, request: Request) -> Response:
    tenant, actor = _tenant_actor(request)
    writes_for(current_principal(request), user_id)
    return _json(await _service(request).erase_user(tenant, user_id, actor=actor))


# --- sessions and interactions --------------------------------------------------------------


@router.post(
    "/sessions",
    status_code=201,
    dependencies=WRITE,
    summary="Open a session",
    responses=documented(SessionCreated, 201),
)
async def create_session(body: SessionCreate, request: Request) -> Response:
    tenant, actor = _tenant_actor(request)
    writes_for(current_principal(request), body.user_id)
    service = _service(request)
    session = await service.create_session(
        tenant,
        body.user_id,
        channel=body.channel,
        ttl_seconds=body.ttl_seconds,
        state=body.state,
        actor=actor,
    )
    handle = service.handle(tenant, session.session_id)
    return _json({**session.to_api(), "handle": handle}, 201)


@router.get(
    "/sessions/{session_id}",
    dependencies=READ,
    summary="A session; 404 once expired",
    responses=documented(SessionRead),
)
async def get_session(session_id: Id, request: Request) -> Response:
    tenant, _ = _tenant_actor(request)
    view = await _service(request).get_session(tenant, session_id)
    return _json({**view.session.to_api(), "interactions_count": len(view.interactions)})


SESSION_PATCH_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            t: {
                "schema": {
                    "type": "object",
                    "properties": {"state": {"type": ["object", "null"]}},
                    "additionalProperties": False,
                }
            }
            for t in PATCH_TYPES
        },
    }
}


@router.patch(
    "/sessions/{session_id}",
    dependencies=WRITE,
    openapi_extra=SESSION_PATCH_BODY,
    summary="Merge-patch a session's state",
    responses=documented(SessionRead),
)
async def patch_session(session_id: Id, request: Request) -> Response:
    tenant, actor = _tenant_actor(request)
    service = _service(request)
    # Unknown: a 404 before the body is read. A session is bound to its user.
    owner = (await service.get_session(tenant, session_id)).session.user_id
    session_user(current_principal(request), None, owner)
    view = await service.patch_session(tenant, session_id, await _merge_patch(request), actor=actor)
    return _json({**view.session.to_api(), "interactions_count": len(view.interactions)})


async def live_session(session_id: Id, request: Request) -> None:
    """An unknown session is a 404 before the body is even looked at."""
    tenant, _ = _tenant_actor(request)
    await _service(request).get_session(tenant, session_id)


@router.post(
    "/sessions/{session_id}/interactions",
    status_code=201,
    dependencies=[*WRITE, Depends(live_session)],
    summary="Append an interaction to a session",
    responses=documented(InteractionOut, 201),
)
async def add_interaction(session_id: Id, body: InteractionCreate, request: Request) -> Response:
    tenant, actor = _tenant_actor(request)
    # A session is bound to its user: only that user, or a key asserting users, adds turns.
    owner = (await _service(request).get_session(tenant, session_id)).session.user_id
    session_user(current_principal(request), None, owner)
    (item,) = await _service(request).add_interactions(
        tenant, session_id, [(body.role, body.content, body.metadata)], actor=actor
    )
    return _json(item.to_api(), 201)


@router.get(
    "/sessions/{session_id}/interactions",
    dependencies=READ,
    summary="A session's interactions, newest last",
    responses=documented(InteractionsOut),
)
async def list_interactions(
    session_id: Id, request: Request, limit: int = Query(20, ge=1, le=10_000)
) -> Response:
    tenant, _ = _tenant_actor(request)
    items = await _service(request).interactions(tenant, session_id, limit)
    return _json({"session_id": session_id, "interactions": [i.to_api() for i in items]})


# --- resolve and policies ---------------------------------------------------------------------


@router.post(
    "/resolve",
    dependencies=READ,
    summary="What a consumer's policy lets it see",
    responses=documented(ResolveOut),
)
async def resolve(body: ResolveRequest, request: Request) -> Response:
    tenant, _ = _tenant_actor(request)
    service = _service(request)
    session_id = body.session_id
    if body.handle is not None:
        if session_id is not None:
            raise BadRequest("give session_id or handle, not both", param="handle")
        issued_to, session_id = service.verify_handle(body.handle)
        if issued_to != tenant:  # another tenant's session: as if it did not exist
            raise ContextNotFound("no session for this context handle")
    bundle: Json = await service.resolve_for(tenant, body.consumer, body.user_id, session_id)
    return _json(
        {
            "consumer": body.consumer,
            "user_id": body.user_id,
            "session_id": session_id,
            "context": bundle,
        }
    )


@router.get(
    "/policies",
    dependencies=READ,
    summary="Every consumer's context policy",
    responses=documented(PoliciesOut),
)
async def list_policies(request: Request) -> Response:
    tenant, _ = _tenant_actor(request)
    return _json({"policies": await _service(request).policies.list(tenant)})


@router.get(
    "/policies/{consumer}",
    dependencies=READ,
    summary="A consumer's context policy",
    responses=documented(PolicyOut),
)
async def get_policy(consumer: Id, request: Request) -> Response:
    tenant, _ = _tenant_actor(request)
    return _json(await _service(request).policies.describe(tenant, consumer))


@router.put(
    "/policies/{consumer}",
    dependencies=[require("admin")],
    summary="Set a consumer's policy",
    responses=documented(PolicyOut),
)
async def put_policy(consumer: Id, body: PolicyPut, request: Request) -> Response:
    tenant, actor = _tenant_actor(request)
    service = _service(request)
    policy = await service.policies.put(tenant, consumer, body.allow)
    await service.notify.record(
        actor=actor,
        tenant=tenant,
        action="context.policy.set",
        resource=f"context/policies/{consumer}",
        details={"allow": list(policy.allow)},
    )
    return _json({"consumer": consumer, "allow": list(policy.allow), "source": "api"})


@router.delete(
    "/policies/{consumer}",
    dependencies=[require("admin")],
    status_code=204,
    response_class=Response,
    summary="Remove a consumer's policy",
)
async def delete_policy(consumer: Id, request: Request) -> Response:
    tenant, actor = _tenant_actor(request)
    service = _service(request)
    await service.policies.delete(tenant, consumer)
    await service.notify.record(
        actor=actor,
        tenant=tenant,
        action="context.policy.deleted",
        resource=f"context/policies/{consumer}",
        details={},
    )
    return Response(status_code=204)
