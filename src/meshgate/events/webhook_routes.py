"""REST for webhook subscriptions: create, list, read, delete, dead letters, replay.

The secret is accepted on create and never returned. How deliveries are signed is described
in :mod:`meshgate.events.webhooks`.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import Field

from meshgate.core.routing import current_principal, require
from meshgate.core.state import port_of, service_of
from meshgate.errors import ValidationFailed
from meshgate.events.subscriptions import check_secret, check_types, check_url, new_id
from meshgate.events.webhooks import WebhookDispatcher, group_of
from meshgate.governance.ports import AuditRecorder, audited
from meshgate.sql import InTransaction
from meshgate.strictjson import RequestBody

router = APIRouter(tags=["events"])


class NewSubscription(RequestBody):
    url: str = Field(description="Where deliveries are POSTed (http or https).")
    types: list[str] | None = Field(
        None, description="Exact types or prefixes like 'meshgate.prediction.*'; none: all."
    )
    secret: str = Field(description="Key of the HMAC-SHA256 signature; never returned.")


class Replay(RequestBody):
    after: int = Field(
        ge=0, le=2**63 - 1, description="Deliver again the events after this sequence."
    )
    until: int | None = Field(
        None,
        ge=1,
        le=2**63 - 1,
        description="Last sequence to deliver again; without it the subscription is rewound "
        "and delivers everything after 'after' again.",
    )


def dispatcher_of(request: Request) -> WebhookDispatcher:
    return service_of(request, WebhookDispatcher)


def audit(request: Request, action: str, resource: str, details: dict[str, Any]) -> InTransaction:
    """The audit record of a change, for the change's own transaction (a store's then=)."""
    principal = current_principal(request)
    return audited(
        port_of(request, AuditRecorder),
        actor=principal.key_id,
        tenant=principal.tenant,
        action=action,
        resource=resource,
        details=details,
    )


@router.post("/v1/subscriptions", status_code=201, dependencies=[require("events:write")])
async def create_subscription(request: Request, body: NewSubscription) -> dict[str, Any]:
    """Deliver the tenant's events of ``types`` appended from now on to ``url``, signed.

    Each delivery is ``POST <url>`` with the CloudEvent as ``application/cloudevents+json`` and
    the headers ``Meshgate-Webhook-Id`` (the event id, the same on every retry),
    ``Meshgate-Webhook-Timestamp`` (Unix seconds) and ``Meshgate-Webhook-Signature``:
    ``v1=`` + hex HMAC-SHA256 under ``secret`` of ``<timestamp>.<raw body>``. Verify it over
    the raw body in constant time and refuse old timestamps. Any 2xx is success; anything
    else is retried with exponential backoff and jitter, then dead-lettered.
    """
    url, types, secret = check_url(body.url), check_types(body.types), check_secret(body.secret)
    tenant = current_principal(request).tenant
    sub_id = new_id()
    created = audit(request, "event.subscription.created", sub_id, {"url": url, "types": types})
    sub = await dispatcher_of(request).subscribe(
        tenant, url, types, secret, sub_id=sub_id, then=created
    )
    return sub.public()


@router.get("/v1/subscriptions", dependencies=[require("events:read")])
async def list_subscriptions(request: Request) -> dict[str, Any]:
    store = dispatcher_of(request).store
    subs = await store.list(current_principal(request).tenant)
    return {"subscriptions": [s.public() for s in subs]}


@router.get("/v1/subscriptions/{sub_id}", dependencies=[require("events:read")])
async def get_subscription(request: Request, sub_id: str) -> dict[str, Any]:
    dispatcher = dispatcher_of(request)
    sub = await dispatcher.store.get(current_principal(request).tenant, sub_id)
    return {
        **sub.public(),
        "delivered_through": await dispatcher.events.log.committed(group_of(sub.id)),
    }


@router.delete(
    "/v1/subscriptions/{sub_id}", status_code=204, dependencies=[require("events:write")]
)
async def delete_subscription(request: Request, sub_id: str) -> None:
    dispatcher = dispatcher_of(request)
    deleted = audit(request, "event.subscription.deleted", sub_id, {})
    await dispatcher.store.delete(current_principal(request).tenant, sub_id, then=deleted)
    await dispatcher.sync()


@router.get("/v1/subscriptions/{sub_id}/dead-letters", dependencies=[require("events:read")])
async def dead_letters(
    request: Request, sub_id: str, limit: int = Query(100, ge=1, le=1000)
) -> dict[str, Any]:
    """Events that exhausted their delivery attempts, oldest first, with the last error."""
    store = dispatcher_of(request).store
    return {
        "dead_letters": await store.dead_letters(current_principal(request).tenant, sub_id, limit)
    }


@router.post(
    "/v1/subscriptions/{sub_id}/replay", status_code=202, dependencies=[require("events:write")]
)
async def replay(request: Request, sub_id: str, body: Replay) -> dict[str, Any]:
    """Deliver again, in order, the subscription's events after ``after`` (to ``until``)."""
    if body.until is not None and body.until <= body.after:
        raise ValidationFailed("'until' must be greater than 'after'", field="until")
    dispatcher = dispatcher_of(request)
    sub = await dispatcher.store.get(current_principal(request).tenant, sub_id)
    await dispatcher.replay(sub, after=body.after, until=body.until)
    details = {"after": body.after, "until": body.until}
    # A replay moves the subscription's offset in the event log, not a row of the SQL store:
    # its record follows it, as before.
    await port_of(request, AuditRecorder).record(
        actor=current_principal(request).key_id,
        tenant=current_principal(request).tenant,
        action="event.subscription.replayed",
        resource=sub.id,
        details=details,
    )
    return {"id": sub.id, **details}
