"""Read-only GraphQL over models, context and events (``POST /graphql``).

A thin view on the same domain services the REST routes use: the same tenant partition and
the same scopes, checked per field (models: any key of the tenant; users and sessions:
``context:read``; events: ``events:read``). There is no mutation type. Every request is
bounded and charged by :mod:`meshgate.gateway.graphql_limits`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import strawberry
from fastapi import Depends, Request
from strawberry.fastapi import GraphQLRouter
from strawberry.scalars import JSON
from strawberry.types import Info

from meshgate.auth import Principal
from meshgate.context.service import ContextService
from meshgate.core.routing import current_principal
from meshgate.core.state import service_of
from meshgate.errors import Forbidden, NotFound
from meshgate.events.service import EventService
from meshgate.gateway.graphql_limits import guard
from meshgate.models.service import ModelService

MAX_EVENTS = 1000

R = TypeVar("R", bound=Callable[..., Any])


def resolver(description: str) -> Callable[[R], R]:
    """``strawberry.field`` as a decorator. Strawberry types that form as returning Any; the
    resolvers below are only read by ``strawberry.type``, never called by name."""
    decorate: Callable[[R], R] = strawberry.field(description=description)
    return decorate


def _caller(info: Info, scope: str | None = None) -> tuple[Request, Principal]:
    request: Request = info.context["request"]
    principal = current_principal(request)
    if scope is not None and not principal.has(scope):
        raise Forbidden(f"this API key lacks the '{scope}' scope")
    return request, principal


@strawberry.type
class Model:
    name: str
    task: str
    description: str | None
    intended_purpose: str | None
    risk_level: str | None
    versions: list[JSON]
    aliases: JSON
    traffic: JSON | None

    @classmethod
    def of(cls, record: dict[str, Any]) -> Model:
        return cls(
            name=record["name"],
            task=record["task"],
            description=record.get("description"),
            intended_purpose=record.get("intended_purpose"),
            risk_level=record.get("risk_level"),
            versions=record.get("versions", []),
            aliases=record.get("aliases", {}),
            traffic=record.get("traffic"),
        )


@strawberry.type
class User:
    user_id: str
    attributes: JSON
    preferences: JSON
    version: int
    updated_at: str


@strawberry.type
class Session:
    session: JSON
    interactions: list[JSON]


@strawberry.type
class EventPage:
    events: list[JSON]
    next_after: int


@strawberry.type
class Query:
    @resolver("Models of the caller's tenant.")
    async def models(self, info: Info) -> list[Model]:
        request, principal = _caller(info)
        return [
            Model.of(m)
            for m in await service_of(request, ModelService).registry.list_models(principal.tenant)
        ]

    @resolver("One model, or null when the tenant has none by that name.")
    async def model(self, info: Info, name: str) -> Model | None:
        request, principal = _caller(info)
        found = await service_of(request, ModelService).registry.find_model(principal.tenant, name)
        return Model.of(found) if found else None

    @resolver("A user's context profile (scope context:read).")
    async def user(self, info: Info, id: str) -> User | None:
        request, principal = _caller(info, "context:read")
        try:
            profile = (
                await service_of(request, ContextService).get_user(principal.tenant, id)
            ).to_api()
        except NotFound:
            return None
        return User(**{k: profile[k] for k in User.__annotations__})

    @resolver("A live session and its newest interactions (context:read).")
    async def session(self, info: Info, id: str, limit: int = 20) -> Session | None:
        request, principal = _caller(info, "context:read")
        try:
            view = await service_of(request, ContextService).get_session(principal.tenant, id)
            turns = await service_of(request, ContextService).interactions(
                principal.tenant, id, min(limit, 100)
            )
        except NotFound:
            return None
        return Session(
            session=JSON(view.session.to_api()), interactions=[JSON(t.to_api()) for t in turns]
        )

    @resolver("Events in log order (scope events:read).")
    async def events(
        self,
        info: Info,
        type: str | None = None,
        subject: str | None = None,
        after: int = 0,
        limit: int = 100,
    ) -> EventPage:
        from meshgate.events.base import Filter

        request, principal = _caller(info, "events:read")
        where = Filter(tenant=principal.tenant, type=type, subject=subject)
        found = await service_of(request, EventService).read(
            after=max(after, 0), limit=max(1, min(limit, MAX_EVENTS)), where=where
        )
        return EventPage(
            events=[JSON(e.to_cloudevent()) for e in found],
            next_after=found[-1].sequence if found else after,
        )


schema = strawberry.Schema(query=Query)


def build_router() -> GraphQLRouter[Any, Any]:
    # Depth, aliases and cost are bounded (and the cost charged) before the query runs.
    return GraphQLRouter(
        schema,
        path="/graphql",
        graphql_ide=None,
        tags=["graphql"],
        dependencies=[Depends(guard)],
    )
