"""The running platform: settings, shared backends and every domain's public service.

Built by the composition root (``meshgate.app``) and reached from routes through
``request.app.state.platform``. Domains talk to each other through these service objects or
through events, never through each other's storage.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from fastapi import APIRouter, Request

from meshgate.auth import KeyService
from meshgate.config import Settings
from meshgate.gateway.fast_routes import HotRoute
from meshgate.limits import Limiter
from meshgate.monitoring.metrics import Metrics
from meshgate.security.credentials import CredentialVault
from meshgate.security.egress import EgressPolicy
from meshgate.sql import Migration, SqlStore

if TYPE_CHECKING:
    from meshgate.context.service import ContextService
    from meshgate.economics.service import EconomicsService
    from meshgate.events.service import EventService
    from meshgate.governance.audit import AuditService
    from meshgate.models.service import ModelService
    from meshgate.monitoring.service import MonitoringService

HealthCheck = Callable[[], Awaitable[None]]


@dataclass
class Platform:
    settings: Settings
    sql: SqlStore
    limiter: Limiter
    keys: KeyService
    metrics: Metrics
    credentials: CredentialVault
    """Upstream credentials: platform secrets granted to tenants (``meshgate.security``)."""
    egress: EgressPolicy
    """Where webhooks and providers may connect."""
    checks: dict[str, HealthCheck] = field(default_factory=dict)
    """Readiness checks by backend name; ``/readyz`` runs them all."""
    events: EventService | None = None
    context: ContextService | None = None
    models: ModelService | None = None
    monitoring: MonitoringService | None = None
    audit: AuditService | None = None
    economics: EconomicsService | None = None


class DomainModule(Protocol):
    """What a domain gives the composition root."""

    name: str
    migrations: list[Migration]

    def routers(self) -> list[APIRouter]:
        """Routes of the domain; known before start so the OpenAPI document has them."""
        ...

    def hot_routes(self) -> list[HotRoute]:
        """Optional: the subset of its routes dispatched directly, declared with
        ``meshgate.gateway.fast_routes.hot_route`` (the inference routes)."""
        ...

    async def start(self, platform: Platform) -> None:
        """Build backends, set the domain's service on ``platform``, add health checks."""
        ...

    async def close(self) -> None: ...


def platform_of(request: Request) -> Platform:
    platform: Platform = request.app.state.platform
    return platform
