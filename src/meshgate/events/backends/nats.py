"""NATS JetStream event log (scale-out): one file-backed stream per namespace.

Subjects are ``<ns>.events.<tenant as hex>.<type>``, so the server filters by tenant and type.
The stream sequence is the log sequence. A producer's duplicate is dropped by JetStream's
``Nats-Msg-Id`` de-duplication, which holds for ``duplicate_window_seconds`` (an hour by
default): a retry within that window is stored once. Consumer-group offsets live in a KV
bucket beside the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Sequence

import nats
from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError
from nats.js import JetStreamContext, api
from nats.js.errors import BucketNotFoundError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.errors import NotFoundError as JsNotFound

from meshgate.events.base import EVERYTHING, Filter
from meshgate.events.envelope import Record
from meshgate.outage import DEFAULT_TIMEOUT, unavailable

log = logging.getLogger("meshgate.events")
FETCH_CHUNK = 512
ACK_WINDOW = 256
"""Records published before their acks are awaited; the timeout bounds each such window."""
START_WAIT = 5.0
RECONNECT_WAIT = 0.5
CLOSE_WAIT = 2.0
WHAT = "event log (NATS)"


class NatsEventLog:
    name = "nats"

    def __init__(
        self,
        url: str,
        *,
        namespace: str,
        poll_interval: float = 0.2,
        duplicate_window_seconds: float = 3600,
        timeout: float = DEFAULT_TIMEOUT,
    ):
        self.url = url
        self.namespace = namespace
        self.stream = f"{namespace}_events"
        self.prefix = f"{namespace}.events"
        self.poll_interval = poll_interval
        self.duplicate_window = duplicate_window_seconds
        self.timeout = timeout
        self._nc: NatsClient | None = None
        self._connector: asyncio.Task[None] | None = None
        self._ready = False
        self._last = 0

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect in the background: a NATS that answers is ready before this returns, one
        that is down (or frozen) holds nothing up; its requests get 503 until it is back."""
        self._first_try = asyncio.Event()
        self._connector = asyncio.create_task(self._connect(), name="nats-connect")
        waiter = asyncio.create_task(self._first_try.wait())
        await asyncio.wait(
            {self._connector, waiter}, timeout=START_WAIT, return_when=asyncio.FIRST_COMPLETED
        )
        waiter.cancel()

    async def _connect(self) -> None:
        try:
            await self._connect_and_prepare()
        except Exception as exc:  # a bad URL or option: say so, the log stays unavailable
            log.error("%s cannot connect: %s", WHAT, exc)
            raise

    async def _connect_and_prepare(self) -> None:
        self._nc = await nats.connect(
            self.url,
            connect_timeout=self.timeout,
            allow_reconnect=True,
            max_reconnect_attempts=-1,  # at start too: keeps trying until NATS is there
            reconnect_time_wait=RECONNECT_WAIT,
            error_cb=self._on_error,
        )
        self._js = self._nc.jetstream(timeout=self.timeout)
        while True:
            try:
                await self._ensure_stream()
                self._last = await self._js_last_sequence()
                self._ready = True
                return
            except (OSError, NatsError, TimeoutError) as exc:
                self._first_try.set()
                unavailable(WHAT, exc)
                await asyncio.sleep(RECONNECT_WAIT)

    async def _on_error(self, exc: Exception) -> None:
        self._first_try.set()
        unavailable(WHAT, exc)

    async def _ensure_stream(self) -> None:
        config = api.StreamConfig(
            name=self.stream,
            subjects=[f"{self.prefix}.>"],
            storage=api.StorageType.FILE,
            retention=api.RetentionPolicy.LIMITS,
            duplicate_window=self.duplicate_window,
        )
        try:
            await self._js.stream_info(self.stream)
        except JsNotFound:
            await self._js.add_stream(config)
        bucket = f"{self.namespace}_event_offsets"
        try:
            self._offsets = await self._js.key_value(bucket)
        except BucketNotFoundError:
            self._offsets = await self._js.create_key_value(
                api.KeyValueConfig(bucket=bucket, storage=api.StorageType.FILE)
            )

    @property
    def js(self) -> JetStreamContext:
        """JetStream, or a 503 at once while NATS is not connected (no wait for a timeout)."""
        if not self._ready or self._nc is None or not self._nc.is_connected:
            raise unavailable(WHAT)
        return self._js

    async def close(self) -> None:
        if self._connector is not None:
            self._connector.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._connector
            self._connector = None
        if self._nc is not None:
            # close, not drain: every publish was awaited for its ack already, and a drain
            # waits for the pending queues of pull subscriptions nobody reads any more.
            with contextlib.suppress(NatsError, OSError, TimeoutError):
                await asyncio.wait_for(self._nc.close(), CLOSE_WAIT)
            self._nc = None
        self._ready = False

    async def ping(self) -> None:
        await self.last_sequence()

    # --- writes -----------------------------------------------------------------------------

    def subject_of(self, record: Record) -> str:
        return f"{self.prefix}.{record.tenant.encode().hex()}.{record.type}"

    async def append(self, records: Sequence[Record]) -> list[Record]:
        if not records:
            return []
        acks: list[api.PubAck] = []
        try:
            # Published one after another on one connection, so the stream keeps their order;
            # the acks come back on one shared inbox (cheaper than a request each). The timeout
            # bounds each window of records, so it catches a stalled server, not a large batch.
            js = self.js
            for start in range(0, len(records), ACK_WINDOW):
                async with asyncio.timeout(self.timeout):
                    window = records[start : start + ACK_WINDOW]
                    futures = [await js.publish_async(*self._message(r)) for r in window]
                    acks += [await f for f in futures]
        except (NatsError, TimeoutError, OSError) as exc:
            raise unavailable(WHAT, exc) from exc
        self._last = max(self._last, *(a.seq for a in acks))
        return [r.with_sequence(a.seq) for r, a in zip(records, acks, strict=True)]

    def _message(self, record: Record) -> tuple[str, bytes, None, str, dict[str, str]]:
        msg_id = hashlib.sha256(record.dedup_key.encode()).hexdigest()
        # (subject, payload, wait_stall, stream, headers) of publish_async
        return self.subject_of(record), record.dumps(), None, self.stream, {"Nats-Msg-Id": msg_id}

    async def commit(self, group: str, sequence: int) -> None:
        await self._set_offset(group, sequence, forward_only=True)

    async def seek(self, group: str, sequence: int) -> None:
        await self._set_offset(group, sequence, forward_only=False)

    async def _set_offset(self, group: str, sequence: int, *, forward_only: bool) -> None:
        key = group.encode().hex()
        self.js  # noqa: B018 (a 503 at once while disconnected)
        for _ in range(20):
            try:
                entry = await self._offsets.get(key)
            except KeyNotFoundError:
                entry = None
            try:
                if entry is None or entry.value is None:
                    await self._offsets.create(key, str(sequence).encode())
                    return
                if forward_only and int(entry.value) >= sequence:
                    return
                await self._offsets.update(key, str(sequence).encode(), last=entry.revision)
                return
            except KeyWrongLastSequenceError:
                continue  # another consumer moved it meanwhile: look again
            except NatsError as exc:
                if "wrong last sequence" in str(exc):
                    continue
                raise unavailable(WHAT, exc) from exc
            except (TimeoutError, OSError) as exc:
                raise unavailable(WHAT, exc) from exc
        raise unavailable(WHAT, f"offset of {group!r} keeps changing")

    # --- reads ------------------------------------------------------------------------------

    async def committed(self, group: str) -> int:
        self.js  # noqa: B018 (a 503 at once while disconnected)
        try:
            entry = await self._offsets.get(group.encode().hex())
        except KeyNotFoundError:
            return 0
        except (NatsError, TimeoutError, OSError) as exc:
            raise unavailable(WHAT, exc) from exc
        return int(entry.value) if entry.value else 0

    async def last_sequence(self) -> int:
        self.js  # noqa: B018 (a 503 at once while disconnected)
        try:
            return await self._js_last_sequence()
        except (NatsError, TimeoutError, OSError) as exc:
            raise unavailable(WHAT, exc) from exc

    async def _js_last_sequence(self) -> int:
        info = await self._js.stream_info(self.stream)
        return int(info.state.last_seq)

    async def read(
        self, after: int = 0, limit: int = 100, where: Filter = EVERYTHING
    ) -> list[Record]:
        if limit <= 0:
            return []
        js = self.js
        try:
            sub = await js.pull_subscribe(
                self._filter_subject(where),
                stream=self.stream,
                config=api.ConsumerConfig(
                    deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
                    opt_start_seq=after + 1,
                    ack_policy=api.AckPolicy.NONE,
                    inactive_threshold=30,
                    mem_storage=True,
                ),
            )
        except (NatsError, TimeoutError, OSError) as exc:
            raise unavailable(WHAT, exc) from exc
        try:
            return await self._drain(sub, limit, where)
        except (NatsError, TimeoutError, OSError) as exc:
            raise unavailable(WHAT, exc) from exc
        finally:
            with contextlib.suppress(NatsError, TimeoutError):
                info = await sub.consumer_info()
                await self._js.delete_consumer(self.stream, info.name)
            with contextlib.suppress(NatsError):
                await sub.unsubscribe()

    async def _drain(
        self, sub: JetStreamContext.PullSubscription, limit: int, where: Filter
    ) -> list[Record]:
        info = await sub.consumer_info()
        pending = info.num_pending or 0
        out: list[Record] = []
        while pending > 0 and len(out) < limit:
            try:
                msgs = await sub.fetch(min(pending, FETCH_CHUNK), timeout=max(self.timeout, 1))
            except (NatsError, TimeoutError) as exc:
                raise unavailable(WHAT, exc) from exc
            pending -= len(msgs)
            for msg in msgs:
                record = Record.loads(msg.data, msg.metadata.sequence.stream)
                if where.matches(record):
                    out.append(record)
                    if len(out) == limit:
                        break
        return out

    def _filter_subject(self, where: Filter) -> str:
        tenant = where.tenant.encode().hex() if where.tenant is not None else "*"
        if where.type is not None:
            return f"{self.prefix}.{tenant}.{where.type}"
        return f"{self.prefix}.{tenant}.>"

    async def wait(self, after: int, within: float) -> None:
        deadline = time.monotonic() + within
        while self._last <= after and time.monotonic() < deadline:
            task = asyncio.current_task()
            if task is not None and task.cancelling():  # see service.raise_if_cancelled
                raise asyncio.CancelledError
            await asyncio.sleep(min(self.poll_interval, max(0.0, deadline - time.monotonic())))
            self._last = max(self._last, await self.last_sequence())
