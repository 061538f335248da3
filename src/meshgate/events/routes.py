"""REST for the event log: read, stream (server-sent events), publish, export.

Every route is partitioned by tenant: a key only ever sees or writes its own tenant's events.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from meshgate.core.routing import current_principal, require
from meshgate.core.state import service_of as registered
from meshgate.errors import UnsupportedMediaType, ValidationFailed
from meshgate.events import export
from meshgate.events.base import Filter
from meshgate.events.config import EventsConfig
from meshgate.events.envelope import (
    TYPE_PATTERN,
    Event,
    check_type,
    parse_integration_event,
    parse_time,
)
from meshgate.events.service import EventService
from meshgate.strictjson import parse_json

router = APIRouter(tags=["events"])
MAX_BATCH = 100
JSON_TYPES = (
    "application/cloudevents+json",
    "application/cloudevents-batch+json",
    "application/json",
)
EVENT_SCHEMA = {
    "type": "object",
    "required": ["specversion", "id", "source", "type"],
    "properties": {
        "specversion": {"const": "1.0"},
        "id": {"type": "string", "minLength": 1},
        "source": {"type": "string", "minLength": 1, "format": "uri-reference"},
        "type": {"type": "string", "description": "Must not start with 'meshgate.'."},
        "subject": {"type": "string"},
        "time": {"type": "string", "format": "date-time"},
        "datacontenttype": {"type": "string"},
        "dataschema": {"type": "string", "format": "uri"},
        "data": {},
    },
    "additionalProperties": {"type": ["string", "integer", "boolean"]},
}
STREAM_BUFFER = 1000


def service_of(request: Request) -> EventService:
    return registered(request, EventService)


def filter_for(request: Request, type: str | None, subject: str | None) -> Filter:
    if type is not None:
        check_type(type)
    return Filter(tenant=current_principal(request).tenant, type=type, subject=subject)


@router.get("/v1/events", dependencies=[require("events:read")])
async def list_events(
    request: Request,
    type: str | None = Query(
        None, max_length=256, pattern=TYPE_PATTERN, description="Exact event type."
    ),
    subject: str | None = Query(None, max_length=1024),
    after: int = Query(0, ge=0, le=2**63 - 1, description="Only events with a larger sequence."),
    limit: int = Query(100, ge=1, le=1000),
) -> Response:
    """``{"events": [...], "next_after": N}`` in log order; pass ``next_after`` as ``after``."""
    events = await service_of(request).read(
        after=after, limit=limit, where=filter_for(request, type, subject)
    )
    body = {
        "events": [e.to_cloudevent() for e in events],
        "next_after": events[-1].sequence if events else after,
    }
    return Response(orjson.dumps(body), media_type="application/json")


@router.post(
    "/v1/events",
    status_code=201,
    dependencies=[require("events:write")],
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                t: {"schema": {"oneOf": [EVENT_SCHEMA, {"type": "array", "items": EVENT_SCHEMA}]}}
                for t in JSON_TYPES
            },
        }
    },
)
async def publish_events(request: Request) -> Response:
    """Publish an integration event (a structured CloudEvent) or a JSON array of up to 100.

    ``meshgate.*`` types are the platform's and are refused. A repeat of an event already in
    the log (same ``source`` and ``id``) is not stored again and returns its sequence.
    """
    tenant = current_principal(request).tenant
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip()
    if content_type not in JSON_TYPES:
        raise UnsupportedMediaType(
            f"send the event as {' or '.join(JSON_TYPES)}, not {content_type!r}",
            field="content-type",
        )
    body = parse_json(await request.body())
    batch = isinstance(body, list)
    items = body if batch else [body]
    if not items or len(items) > MAX_BATCH:
        raise ValidationFailed(f"send 1 to {MAX_BATCH} events", field="body")
    records = []
    for index, item in enumerate(items):
        try:
            records.append(parse_integration_event(item, tenant=tenant))
        except ValidationFailed as exc:
            if not batch:
                raise
            field = f"[{index}].{exc.extra.get('field', 'body')}"
            raise ValidationFailed(f"event {index}: {exc.detail}", field=field) from exc
    stored = await service_of(request).append_records(records)
    out: Any = [e.to_cloudevent() for e in stored]
    return Response(orjson.dumps(out if batch else out[0]), 201, media_type="application/json")


@router.get(
    "/v1/events/stream",
    dependencies=[require("events:read")],
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream_events(
    request: Request,
    type: str | None = Query(None, max_length=256, pattern=TYPE_PATTERN),
    subject: str | None = Query(None, max_length=1024),
    after: int | None = Query(None, ge=0, le=2**63 - 1, description="Start after this sequence."),
    last_event_id: str | None = Header(
        None, pattern=r"^[0-9]{1,19}$", description="Resume after this sequence."
    ),
) -> StreamingResponse:
    """Server-sent events: ``id`` is the sequence, ``event`` the type, ``data`` the CloudEvent.

    Resumes after ``Last-Event-ID`` (or ``after``); without either it starts at the live end.
    """
    service = service_of(request)
    where = filter_for(request, type, subject)
    if last_event_id is not None:
        if not last_event_id.isdigit():
            raise ValidationFailed(
                "'Last-Event-ID' must be an event sequence", field="Last-Event-ID"
            )
        start = int(last_event_id)
    elif after is not None:
        start = after
    else:
        start = await service.log.last_sequence()
    heartbeat = registered(request, EventsConfig).stream_heartbeat_seconds
    return StreamingResponse(
        sse(service, where, start, heartbeat),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def sse(
    service: EventService, where: Filter, start: int, heartbeat: float
) -> AsyncIterator[bytes]:
    queue: asyncio.Queue[Event] = asyncio.Queue(STREAM_BUFFER)

    async def pump() -> None:
        async for event in service.tail(after=start, where=where):
            await queue.put(event)

    task = asyncio.create_task(pump(), name="events-sse")
    service.open_streams += 1
    try:
        yield b"retry: 1000\n\n"
        while True:
            try:
                event = await asyncio.wait_for(queue.get(), heartbeat)
            except TimeoutError:
                if task.done():
                    return
                yield b": keep-alive\n\n"
                continue
            data = orjson.dumps(event.to_cloudevent())
            yield b"id: %d\nevent: %s\ndata: %s\n\n" % (event.sequence, event.type.encode(), data)
    finally:
        # The client went away (or the log failed): stop tailing and free everything.
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        service.open_streams -= 1


@router.get(
    "/v1/events/export",
    dependencies=[require("events:read")],
    responses={
        200: {
            "content": {
                "application/x-ndjson": {"schema": {"type": "string"}},
                "application/vnd.apache.parquet": {
                    "schema": {"type": "string", "format": "binary"}
                },
            }
        }
    },
)
async def export_events(
    request: Request,
    format: Literal["jsonl", "parquet"] = Query("jsonl", description="jsonl or parquet"),
    type: str | None = Query(None, max_length=256, pattern=TYPE_PATTERN),
    subject: str | None = Query(None, max_length=1024),
    since: str | None = Query(
        None,
        description="RFC 3339 time; only events at or after it.",
        json_schema_extra={"format": "date-time"},
    ),
) -> Response:
    """The tenant's event history as JSON lines (streamed) or one Parquet file."""
    export.check_format(format)
    where = filter_for(request, type, subject)
    moment = parse_time(since, "since") if since is not None else None
    service = service_of(request)
    if format == "parquet":
        data = await export.parquet_bytes(service, where, moment)
        return Response(
            data,
            media_type="application/vnd.apache.parquet",
            headers={"Content-Disposition": 'attachment; filename="events.parquet"'},
        )

    async def lines() -> AsyncIterator[bytes]:
        async for page in export.pages(service, where, since=moment):
            yield export.jsonl(page)

    return StreamingResponse(lines(), media_type="application/x-ndjson")
