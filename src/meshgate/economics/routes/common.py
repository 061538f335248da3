"""What every economics route needs: the service, and the caller's own model."""

from __future__ import annotations

from fastapi import Request

from meshgate.core.routing import current_principal
from meshgate.core.state import service_of
from meshgate.economics.service import EconomicsService
from meshgate.models.service import ModelService


def economics_of(request: Request) -> EconomicsService:
    return service_of(request, EconomicsService)


async def existing_model(request: Request, name: str) -> str:
    """The caller's tenant, once ``name`` is known to be a model of it (else a 404)."""
    tenant = current_principal(request).tenant
    await service_of(request, ModelService).registry.get_model(tenant, name)
    return tenant
