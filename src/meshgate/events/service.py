"""``platform.events``: publish, react, read and erase, over any event log backend.

Other domains use :meth:`EventService.publish`, :meth:`EventService.on` and
:meth:`EventService.shred_user` (the contract in docs/architecture.md); the routes, the
webhook dispatcher and the CLI use the reading side.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import orjson

from meshgate.errors import BackendUnavailable, ValidationFailed
from meshgate.events.base import EVERYTHING, EventLog, Filter
from meshgate.events.crypto import DataKeys
from meshgate.events.envelope import ERASED, Event, Record, check_type, format_time, now
from meshgate.events.outbox import EventOutbox, OutboxRelay, SinkHealth
from meshgate.events.tap import LogTap, TapReader

log = logging.getLogger("meshgate.events")
Handler = Callable[[Event], Awaitable[None]]
LOCAL_QUEUE_LIMIT = 100_000
# Event types already validated: the platform publishes a handful of types over and over.
_CHECKED_TYPES: set[str] = set()


class EventService:
    def __init__(self, log_backend: EventLog, keys: DataKeys, outbox: EventOutbox | None = None):
        self.log = log_backend
        self.keys = keys
        self.outbox = outbox
        self.tap = LogTap(log_backend)
        """The process's one reader of the log, shared by its followers and consumer groups."""
        self._relay = OutboxRelay(outbox, log_backend) if outbox is not None else None
        self.health = outbox.health if outbox is not None else SinkHealth()
        self._handlers: list[tuple[str, Handler]] = []
        self._local: asyncio.Queue[Event] = asyncio.Queue(LOCAL_QUEUE_LIMIT)
        self._dispatcher: asyncio.Task[None] | None = None
        self.dropped_local = 0
        self.open_streams = 0
        """Server-sent event streams being served now (each holds one tail of the log)."""

    async def start(self) -> None:
        await self.log.start()
        self._local = asyncio.Queue(LOCAL_QUEUE_LIMIT)
        self._dispatcher = asyncio.create_task(self._dispatch_local(), name="events-local")
        if self._relay is not None:
            self._relay.start()

    async def close(self) -> None:
        if self._relay is not None:
            await self._relay.close()
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            await asyncio.gather(self._dispatcher, return_exceptions=True)
            self._dispatcher = None
        await self.tap.close()
        await self.log.close()

    # --- the contract other domains use -----------------------------------------------------

    async def publish(
        self,
        type: str,
        *,
        tenant: str,
        data: Any,
        subject: str | None = None,
        personal: Any = None,
        user_id: str | None = None,
        source: str = "/meshgate",
        id: str | None = None,
    ) -> Event:
        """Append one event; returns once it is durable, with its sequence.

        While the log is down the event is kept in the outbox (durable too) and its sequence
        is 0: the relay appends it once the log is back.
        """
        if type not in _CHECKED_TYPES:
            check_type(type)
            if len(_CHECKED_TYPES) < 1024:
                _CHECKED_TYPES.add(type)
        if not tenant or not isinstance(tenant, str):
            raise ValidationFailed("'tenant' is required", field="tenant")
        if personal is not None:
            if not user_id:
                raise ValidationFailed("'user_id' is required with 'personal'", field="user_id")
            if not isinstance(data, dict | None) or (data and "personal" in data):
                raise ValidationFailed(
                    "with 'personal', 'data' must be an object without a 'personal' key",
                    field="data",
                )
        _check_json(data, "data")
        owner = self.keys.owner_of(tenant, user_id) if personal is not None and user_id else None
        sealed = None
        if owner is not None:
            # Serialized once: the check and the encryption use the same bytes.
            sealed = await self.keys.encrypt_json(tenant, owner, _json(personal, "personal"))
        moment = now()
        record = Record(
            tenant=tenant,
            id=id or new_event_id(),
            source=source,
            type=type,
            time=format_time(moment),
            subject=subject,
            data=data,
            owner=owner,
            personal=sealed,
        )
        if self.outbox is not None and self.outbox.backlog:
            await self.outbox.keep(record)  # behind the events kept before it
            stored = record
        else:
            try:
                (stored,) = await self.log.append([record])
                self.health.log = True
            except BackendUnavailable:
                self.health.log = False
                if self.outbox is None:
                    raise
                # The write this event reports has happened: keep the event for the relay
                # rather than answer an error for it (sequence 0 until the relay appends it).
                await self.outbox.keep(record)
                stored = record
        event = _to_event(stored, personal, user_id=user_id if owner else None, moment=moment)
        self._notify(event)
        return event

    def accepting(self) -> bool:
        """False when an event published now is known to fail: the log and the outbox both
        refused their last use (or, behind a backlog, the outbox did). No I/O."""
        if self.outbox is None:
            return True  # nothing to fall back on, and no relay to notice the log is back
        if self.outbox.backlog:
            return self.health.outbox
        return self.health.log or self.health.outbox

    def on(self, type_prefix: str, handler: Handler) -> None:
        """Call ``handler(event)`` for each event this process appends whose type matches."""
        self._handlers.append((type_prefix, handler))

    def user_ref(self, tenant: str, user_id: str) -> str:
        """The keyed pseudonym the log names ``user_id`` by (never the id itself)."""
        return self.keys.owner_of(tenant, user_id)

    async def shred_user(self, tenant: str, user_id: str) -> int:
        """Destroy the user's data key: their personal parts read as erased from now on."""
        return await self.keys.shred(tenant, user_id)

    # --- appending already validated records (integration events) ---------------------------

    async def append_records(self, records: Sequence[Record]) -> list[Event]:
        stored = await self.log.append(records)
        events = [_to_event(r, None) for r in stored]
        for event in events:
            self._notify(event)
        return events

    # --- reading ------------------------------------------------------------------------------

    async def read(
        self, *, after: int = 0, limit: int = 100, where: Filter = EVERYTHING
    ) -> list[Event]:
        records = await self.log.read(after, limit, where)
        return await self.open_records(records)

    async def open_records(self, records: Sequence[Record]) -> list[Event]:
        """Events with their personal parts decrypted, or shown as erased."""
        sealed = [
            (r.tenant, r.owner, r.personal)
            for r in records
            if r.personal is not None and r.owner is not None
        ]
        clear = await self.keys.decrypt_many(sealed) if sealed else {}

        def personal(r: Record) -> Any:
            if not r.personal:
                return None
            if r.owner is None:
                return ERASED
            return clear.get((r.tenant, r.owner, r.personal), ERASED)

        return [_to_event(r, personal(r)) for r in records]

    async def tail(
        self, *, after: int = 0, where: Filter = EVERYTHING, batch: int = 200
    ) -> AsyncIterator[Event]:
        """Every matching event after ``after``, then new ones as they are appended."""
        reader = self.tap.reader("tail", after)
        try:
            while True:
                raise_if_cancelled()
                # Past stretches without a matching record too, so filtered tails stay cheap.
                records, after = await reader.next(after, where, batch, within=30)
                for event in await self.open_records(records):
                    yield event
        finally:
            reader.close()

    async def consume(
        self,
        group: str,
        handler: Handler,
        *,
        where: Filter = EVERYTHING,
        batch: int = 200,
        wants: Callable[[Record], bool] | None = None,
    ) -> None:
        """Run ``group``: handle each event after its committed offset, committing as it goes.

        At-least-once: an event handled but not yet committed when the process stops is
        handled again on restart. Run a group in one process at a time (webhook delivery
        holds a lease in the SQL store for that); two running it would each see every event.
        ``wants`` picks the records to handle among those ``where`` matches (the others are
        passed over without opening their personal parts).
        """
        committed = await self.log.committed(group)
        cursor = _Cursor(group, committed, self.tap.reader(group, committed))
        try:
            while True:
                records, upto = await cursor.next_batch(self.log, where, batch)
                if wants is not None:
                    records = [r for r in records if wants(r)]
                after = cursor.after
                try:
                    for event in await self.open_records(records):
                        await handler(event)
                        after = event.sequence
                except asyncio.CancelledError:
                    # Stopping (a graceful shutdown hands the group to another process): what
                    # was handled is committed, so the next holder does not handle it again.
                    if after > cursor.mine:
                        with contextlib.suppress(Exception):
                            await self.log.commit(group, after)
                    raise
                await cursor.commit(self.log, upto)
        finally:
            cursor.reader.close()

    async def consume_records(
        self,
        group: str,
        handler: Callable[[list[Record]], Awaitable[object]],
        *,
        where: Filter = EVERYTHING,
        batch: int = 500,
    ) -> None:
        """Run ``group`` a batch at a time: ``handler`` gets the stored records (personal parts
        sealed) of each read, and the offset is committed once it returns.

        At-least-once, like :meth:`consume`: a batch handled but not committed when the
        process stops is handled again, so handlers are idempotent (by event id). The
        records are shared with the process's other consumers: handlers do not change them.
        """
        committed = await self.log.committed(group)
        cursor = _Cursor(group, committed, self.tap.reader(group, committed))
        try:
            while True:
                records, upto = await cursor.next_batch(self.log, where, batch)
                await handler(records)
                await cursor.commit(self.log, upto)
        finally:
            cursor.reader.close()

    async def replay(self, group: str, *, after: int) -> None:
        """Rewind ``group`` so it handles again every event after ``after``."""
        await self.log.seek(group, after)

    # --- in-process reactions -----------------------------------------------------------------

    def _notify(self, event: Event) -> None:
        if not self._handlers:
            return
        try:
            self._local.put_nowait(event)
        except asyncio.QueueFull:
            # A stuck handler must never block publishers; the log still has the event.
            self.dropped_local += 1

    async def _dispatch_local(self) -> None:
        while True:
            event = await self._local.get()
            for prefix, handler in list(self._handlers):
                if event.type.startswith(prefix):
                    try:
                        await handler(event)
                    except Exception:
                        log.exception("event handler for %r failed on %s", prefix, event.id)


class _Cursor:
    """A consumer group's place in the log: ``mine`` is its committed offset as this process
    knows it, ``after`` what it has read up to. Records come through the process's tap."""

    def __init__(self, group: str, committed: int, reader: TapReader):
        self.group = group
        self.after = self.mine = committed
        self.reader = reader

    async def next_batch(
        self, log: EventLog, where: Filter, batch: int
    ) -> tuple[list[Record], int]:
        """The next records after ``after`` (waiting while there are none) and the position
        up to which they are every record the group wants: commit that once they are handled.
        """
        while True:
            raise_if_cancelled()
            stored = await log.committed(self.group)
            if stored < self.mine:  # a replay (from any process) moved the offset back
                self.after = self.mine = stored
            records, upto = await self.reader.next(self.after, where, batch)
            if records:
                return records, upto
            if upto > self.after:
                # Nothing for the group in a stretch the tap has read (past a stretch with
                # no record at all only once two reads found it empty, see events/tap.py).
                await self.commit(log, upto)

    async def commit(self, log: EventLog, sequence: int) -> None:
        await log.commit(self.group, sequence)
        self.after = self.mine = sequence


def raise_if_cancelled() -> None:
    """Honour a cancellation some library swallowed.

    On Python 3.11, ``asyncio.wait_for`` (used inside the NATS and Redis clients) can lose a
    cancellation that arrives as its inner future completes; an endless loop would then never
    stop. The task still counts the request, so loops check it each round.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def new_event_id() -> str:
    """A random UUID (version 4 layout). Ids must be unique, not secret; os.urandom costs tens
    of microseconds a call on some virtual machines, the seeded generator under one."""
    return str(uuid.UUID(int=random.getrandbits(128), version=4))


def _json(value: Any, name: str) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError as exc:
        raise ValidationFailed(f"'{name}' must be JSON-serializable: {exc}", field=name) from exc


def _check_json(value: Any, name: str) -> Any:
    _json(value, name)
    return value


def _to_event(
    record: Record, personal: Any, *, user_id: str | None = None, moment: datetime | None = None
) -> Event:
    return Event(
        id=record.id,
        source=record.source,
        type=record.type,
        time=moment or datetime.fromisoformat(record.time.replace("Z", "+00:00")),
        tenant=record.tenant,
        data=record.data,
        subject=record.subject,
        datacontenttype=record.datacontenttype,
        sequence=record.sequence,
        user_id=user_id,
        personal=personal,
        extensions=record.extensions,
    )
