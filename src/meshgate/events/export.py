"""Export of event history as JSON lines or Parquet (for training and engines like Spark).

Both formats carry the same columns; in Parquet ``data`` and ``personal`` are JSON text, so a
schema change in one event type never breaks the file. Personal parts of erased users come
out as ``{"erased": true}``, exactly as the API shows them.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any, BinaryIO

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from meshgate.errors import ValidationFailed
from meshgate.events.base import Filter
from meshgate.events.envelope import Event
from meshgate.events.service import EventService

FORMATS = ("jsonl", "parquet")
PAGE = 1000
SCHEMA = pa.schema(
    [
        ("sequence", pa.int64()),
        ("id", pa.string()),
        ("source", pa.string()),
        ("type", pa.string()),
        ("subject", pa.string()),
        ("time", pa.timestamp("us", tz="UTC")),
        ("tenant", pa.string()),
        ("datacontenttype", pa.string()),
        ("data", pa.string()),
        ("personal", pa.string()),
    ]
)


def check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValidationFailed(f"'format' must be one of {', '.join(FORMATS)}", field="format")
    return fmt


async def pages(
    events: EventService,
    where: Filter,
    *,
    since: datetime | None = None,
    after: int = 0,
    until: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> AsyncIterator[list[Event]]:
    """Matching events in log order, page by page, up to sequence ``until`` when given."""
    while True:
        page = await events.read(after=after, limit=PAGE, where=where)
        if until is not None:
            page = [e for e in page if e.sequence <= until]
        if not page:
            return
        if progress is not None:
            progress(page[-1].sequence - after)
        after = page[-1].sequence
        chosen = [e for e in page if since is None or e.time >= since]
        if chosen:
            yield chosen


def jsonl(page: list[Event]) -> bytes:
    return b"".join(orjson.dumps(e.to_cloudevent()) + b"\n" for e in page)


def columns(page: list[Event]) -> pa.Table:
    rows: dict[str, list[Any]] = {name: [] for name in SCHEMA.names}
    for e in page:
        rows["sequence"].append(e.sequence)
        rows["id"].append(e.id)
        rows["source"].append(e.source)
        rows["type"].append(e.type)
        rows["subject"].append(e.subject)
        rows["time"].append(e.time)
        rows["tenant"].append(e.tenant)
        rows["datacontenttype"].append(e.datacontenttype)
        rows["data"].append(orjson.dumps(e.data).decode())
        rows["personal"].append(
            orjson.dumps(e.personal).decode() if e.personal is not None else None
        )
    return pa.Table.from_pydict(rows, schema=SCHEMA)


async def write(
    events: EventService,
    out: BinaryIO,
    fmt: str,
    where: Filter,
    *,
    since: datetime | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write every matching event to ``out``; returns how many."""
    count = 0
    writer = pq.ParquetWriter(out, SCHEMA) if fmt == "parquet" else None
    try:
        async for page in pages(events, where, since=since, progress=progress):
            count += len(page)
            if writer is not None:
                writer.write_table(columns(page))
            else:
                out.write(jsonl(page))
    finally:
        if writer is not None:
            writer.close()
    return count


async def parquet_bytes(events: EventService, where: Filter, since: datetime | None) -> bytes:
    buffer = io.BytesIO()
    await write(events, buffer, "parquet", where, since=since)
    return buffer.getvalue()
