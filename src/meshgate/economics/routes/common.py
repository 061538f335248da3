"""What every economics route needs: the service, and the caller's own model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Request

from meshgate.errors import BackendUnavailable
from meshgate.gateway.security import current_principal
from meshgate.platform import platform_of

if TYPE_CHECKING:
    from meshgate.economics.service import EconomicsService


def economics_of(request: Request) -> EconomicsService:
    service = platform_of(request).economics
    if service is None:
        raise BackendUnavailable("the economics module is not started")
    return service


async def existing_model(request: Request, name: str) -> str:
    """The caller's tenant, once ``name`` is known to be a model of it (else a 404)."""
    tenant = current_principal(request).tenant
    models = platform_of(request).models
    if models is None:
        raise BackendUnavailable("the model services are not started")
    await models.registry.get_model(tenant, name)
    return tenant
