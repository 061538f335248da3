"""Prices per model version (``registry:write`` to set) and spend from the log (``admin``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from pydantic import BaseModel

from meshgate.core.routing import current_principal, require
from meshgate.core.state import service_of
from meshgate.economics.prices import PriceSet
from meshgate.economics.routes.common import economics_of, existing_model
from meshgate.economics.spend import stamp
from meshgate.errors import NotFound, ValidationFailed
from meshgate.models.config import NAME
from meshgate.models.service import ModelService

router = APIRouter(prefix="/v1", tags=["spend"])
ModelName = Annotated[str, Path(pattern=NAME, description="Model name.")]
Version = Annotated[str, Path(pattern=NAME, description="Version.")]


class PriceView(BaseModel):
    model: str
    version: str
    input_per_mtok: float
    output_per_mtok: float
    cached_input_per_mtok: float
    currency: str
    source: Literal["registry", "default"]


async def _version(request: Request, name: str, version: str) -> tuple[str, str | None]:
    """(tenant, upstream model) of an existing version of the caller's model."""
    tenant = await existing_model(request, name)
    record = await service_of(request, ModelService).registry.get_model(tenant, name)
    found = next((v for v in record["versions"] if v["version"] == version), None)
    if found is None:
        raise NotFound(f"model {name!r} has no version {version!r}")
    return tenant, found.get("provider", {}).get("model") or name


@router.get(
    "/registry/models/{name}/versions/{version}/price",
    response_model=PriceView,
    summary="The price of a model version (registry, else the shipped default)",
)
async def get_price(name: ModelName, version: Version, request: Request) -> dict[str, Any]:
    tenant, upstream = await _version(request, name, version)
    price = await economics_of(request).prices.price(tenant, name, version, upstream)
    if price is None:
        raise NotFound(f"version {version} of {name} has no price", code="no_price")
    return {"model": name, "version": version, **price.view()}


@router.put(
    "/registry/models/{name}/versions/{version}/price",
    response_model=PriceView,
    dependencies=[require("registry:write")],
    summary="Set the price of a model version (per million tokens)",
)
async def put_price(
    name: ModelName, version: Version, body: PriceSet, request: Request
) -> dict[str, Any]:
    tenant, _ = await _version(request, name, version)
    economics = economics_of(request)
    actor = current_principal(request).key_id
    audit = economics.audited(
        actor, tenant, "model.price.set", f"models/{name}/versions/{version}", body.model_dump()
    )
    price = await economics.prices.set(tenant, name, version, body, actor, then=audit)
    return {"model": name, "version": version, **price.view()}


@router.get(
    "/spend",
    dependencies=[require("admin")],
    summary="Spend and tokens from the log, grouped by key, tenant, user or model",
    description="Counted from `meshgate.prediction.made` by one process of the cluster, so the"
    " last calls may show a moment later. Grouped by user, calls that named no user and calls"
    " of users since erased count under `user: null`: an erasure keeps the amounts (the"
    " tenant's cost) and drops the user id. Amounts are summed per currency, never across.",
)
async def get_spend(
    request: Request,
    group_by: Annotated[Literal["key", "tenant", "user", "model"], Query()] = "model",
    since: Annotated[str | None, moment_query("From (inclusive)")] = None,
    until: Annotated[str | None, moment_query("To (exclusive)")] = None,
) -> dict[str, Any]:
    lo, hi = instant("since", since), instant("until", until)
    principal = current_principal(request)
    groups = await economics_of(request).spend.report(
        tenant=principal.tenant_filter,
        group_by=group_by,
        since=stamp(lo) if lo else None,
        until=stamp(hi) if hi else None,
    )
    return {"group_by": group_by, "since": lo, "until": hi, "groups": groups}


# RFC 3339 with its offset: a bare number is no time (the framework's parser would read one
# as seconds since the epoch), and a time without a zone is ambiguous.
RFC3339 = r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})$"


def moment_query(what: str) -> Any:
    return Query(
        pattern=RFC3339,
        description=f"{what}, RFC 3339 with its offset (2026-01-31T12:00:00Z).",
        json_schema_extra={"format": "date-time"},
    )


def instant(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
        return moment.astimezone(UTC)  # an offset past year 1 or 9999 overflows here
    except (ValueError, OverflowError) as exc:
        raise ValidationFailed(f"{name}: {exc}", param=name) from None
