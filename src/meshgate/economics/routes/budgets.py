"""Budgets per key, tenant or user (scope ``admin``): ``PUT`` sets, ``GET`` shows the amount
used in the current period, ``DELETE`` lifts."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request

from meshgate.auth import KeyService
from meshgate.core.routing import current_principal, require
from meshgate.core.state import service_of
from meshgate.economics.budgets import BudgetSet, utc_now
from meshgate.economics.routes.common import economics_of
from meshgate.errors import NotFound

router = APIRouter(prefix="/v1/budgets", tags=["spend"], dependencies=[require("admin")])
SCOPES = ("key", "tenant", "user")
ScopeName = Annotated[
    Literal["key", "tenant", "user"], Path(description="What is budgeted: key, tenant or user.")
]
Subject = Annotated[
    str, Path(pattern=r"^[A-Za-z0-9._@:-]{1,128}$", description="Key id, tenant or user id.")
]


async def _owner(request: Request, scope: str, subject: str) -> str:
    """The tenant the budget belongs to; another tenant's key or tenant is a 404."""
    if scope not in SCOPES:
        raise NotFound(f"no budget scope {scope!r}; scopes: {', '.join(SCOPES)}")
    principal = current_principal(request)
    if scope == "key":
        record = await service_of(request, KeyService).get(subject, tenant=principal.tenant_filter)
        return str(record["tenant"])
    if scope == "tenant":
        if subject != principal.tenant and not principal.is_root:
            raise NotFound(f"no tenant {subject!r}")
        return subject
    return principal.tenant


async def _view(request: Request, tenant: str, scope: str, subject: str) -> dict[str, Any]:
    economics = economics_of(request)
    budget = await economics.budgets.get(tenant, scope, subject)
    if budget is None:
        raise NotFound(f"no {scope} budget for {subject!r}")
    used = await economics.counters.used(budget.line(utc_now()).key)
    return {**budget.view(), "used": round(used, 10)}


@router.put(
    "/{budget_scope}/{budget_id}",
    summary="Set a budget (per day or month, UTC)",
    description="A budget is in one currency (`currency`, ISO 4217, USD unless set) and only"
    " costs priced in that currency count against it: amounts in two currencies are never"
    " added, nor converted. A call to a model priced in another currency is refused before"
    " the upstream by a hard budget it falls under (409 problem+json, code"
    " `budget_currency_mismatch`, naming both currencies) and left out of a soft-only one."
    " Unpriced calls cost nothing in any currency. Setting a budget again replaces it; its"
    " running total for the period stays, unless the currency changed: then it starts at 0.",
)
async def put_budget(
    budget_scope: ScopeName, budget_id: Subject, body: BudgetSet, request: Request
) -> dict[str, Any]:
    tenant = await _owner(request, budget_scope, budget_id)
    economics = economics_of(request)
    actor = current_principal(request).key_id
    resource = economics.audited_resource(tenant, budget_scope, budget_id)
    audit = economics.audited(actor, tenant, "budget.set", resource, body.model_dump())
    await economics.budgets.put(tenant, budget_scope, budget_id, body, actor, then=audit)
    return await _view(request, tenant, budget_scope, budget_id)


@router.get("/{budget_scope}/{budget_id}", summary="A budget and what its period used so far")
async def get_budget(
    budget_scope: ScopeName, budget_id: Subject, request: Request
) -> dict[str, Any]:
    tenant = await _owner(request, budget_scope, budget_id)
    return await _view(request, tenant, budget_scope, budget_id)


@router.delete("/{budget_scope}/{budget_id}", summary="Lift a budget")
async def delete_budget(
    budget_scope: ScopeName, budget_id: Subject, request: Request
) -> dict[str, Any]:
    tenant = await _owner(request, budget_scope, budget_id)
    economics = economics_of(request)
    actor = current_principal(request).key_id
    resource = economics.audited_resource(tenant, budget_scope, budget_id)
    audit = economics.audited(actor, tenant, "budget.deleted", resource, {})
    if not await economics.budgets.delete(tenant, budget_scope, budget_id, then=audit):
        raise NotFound(f"no {budget_scope} budget for {budget_id!r}")
    return {"deleted": True}
