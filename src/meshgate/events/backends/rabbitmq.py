"""RabbitMQ Streams event log (scale-out): one stream per namespace, ``<ns>_events``.

The URL is ``rabbitmq-stream://user:password@host:5552/vhost`` (the stream protocol's port,
plugin ``rabbitmq_stream``).

A stream has no server-side de-duplication by key and its publish confirms carry no offset,
so every process follows the stream from its first entry with one tail subscription and
derives the log from it, the same way in every process because the stream's order is one:

- an entry is a record (digest of its (tenant, source, id), a writer token, the record) or a
  marker (a writer token only);
- a record whose digest was already seen is a duplicate and is skipped, markers are skipped,
  every other record takes the next sequence. So sequences are gapless and a repeat is stored
  once as far as any reader can tell, even when two processes publish it at the same moment;
- ``append`` publishes, then returns once the tail has seen its records (so they are
  committed on the broker) with the sequences the tail gave them;
- ``start`` publishes a marker and returns once the tail reached it: this process then knows
  every record that existed before it started.

The tail keeps, per record, its stream offset and a 16-byte digest in memory (about 100 bytes
a record) and the newest ``recent_records`` records themselves, so reads near the head (live
tails, consumer groups) are served from memory; older pages are fetched from the broker.
The stream must keep its history (no max-age or max-length retention): sequences count from
its first entry. Consumer-group offsets are stored on the broker with the stream's offset tracking.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import secrets
import time
from array import array
from collections import deque
from collections.abc import Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from rstream import (
    ConfirmationStatus,
    Consumer,
    ConsumerOffsetSpecification,
    MessageContext,
    OffsetType,
    Producer,
)
from rstream.exceptions import OffsetNotFound, StreamDoesNotExist

from meshgate.errors import BackendUnavailable
from meshgate.events.base import EVERYTHING, Filter
from meshgate.events.envelope import Record

RECORD, MARKER = b"R", b"M"
DIGEST = 16  # bytes of the (tenant, source, id) digest
TOKEN = 16  # bytes of a writer token: 8 random bytes of the process, 8 of a counter
HEADER = 1 + DIGEST + TOKEN
ACK_TIMEOUT = 10.0
MAX_FRAME_BYTES = 512 * 1024  # one publish frame; the broker's frame_max is 1 MiB
READERS = 4  # a connection subscribes to a stream once: concurrent reads need their own


def digest_of(record: Record) -> bytes:
    return hashlib.blake2b(record.dedup_key.encode(), digest_size=DIGEST).digest()


class RabbitStreamEventLog:
    name = "rabbitmq-stream"

    def __init__(
        self,
        url: str,
        *,
        namespace: str,
        poll_interval: float = 0.2,
        start_timeout: float = 60,
        recent_records: int = 50_000,
    ):
        parts = urlsplit(url)
        self._connection: dict[str, Any] = {
            "host": parts.hostname or "127.0.0.1",
            "port": parts.port or 5552,
            "username": unquote(parts.username or "guest"),
            "password": unquote(parts.password or "guest"),
            "vhost": unquote(parts.path[1:]) if len(parts.path) > 1 else "/",
        }
        self.stream = f"{namespace}_events"
        self.poll_interval = poll_interval
        self.start_timeout = start_timeout
        self._writer = secrets.token_bytes(8)
        self._counter = itertools.count()
        self._producer: Producer | None = None
        self._consumer: Consumer | None = None
        self._readers: asyncio.Queue[Consumer] = asyncio.Queue()
        self._reader_count = 0
        # What the tail has derived from the stream so far.
        self._tail_offset = -1
        self._offsets = array("q")  # stream offset of sequence n at index n - 1
        self._sequence_of: dict[bytes, int] = {}  # digest -> sequence
        self._recent: deque[bytes] = deque(maxlen=recent_records)  # newest records, encoded
        # This process's publishes the tail has not seen yet.
        self._awaiting: dict[bytes, asyncio.Future[int]] = {}  # token -> its sequence
        self._pending: dict[bytes, asyncio.Future[int]] = {}  # digest -> its sequence
        self._grew = asyncio.Event()
        self._publish_lock = asyncio.Lock()
        self._offset_lock = asyncio.Lock()

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        try:
            self._producer = Producer(**self._connection, connection_name="meshgate-events")
            await self._producer.start()
            await self._producer.create_stream(self.stream, exists_ok=True)
            self._consumer = Consumer(**self._connection, connection_name="meshgate-events-tail")
            await self._consumer.start()
            await self._consumer.subscribe(
                self.stream,
                self._on_tail,
                offset_specification=ConsumerOffsetSpecification(OffsetType.FIRST, None),
                initial_credit=32,
            )
            token = self._token()
            arrived = self._expect(token)
            await self._publish([MARKER + token], arrived)
            await self._settle([arrived], self.start_timeout)
        except BackendUnavailable:
            await self.close()
            raise
        except Exception as exc:  # the client raises many types for one unreachable broker
            await self.close()
            raise BackendUnavailable(f"rabbitmq stream event log: {exc!r}") from exc

    async def close(self) -> None:
        readers = []
        while not self._readers.empty():
            readers.append(self._readers.get_nowait())
        self._reader_count = 0
        clients = [c for c in (*readers, self._consumer, self._producer) if c is not None]
        await asyncio.gather(
            *(asyncio.wait_for(c.close(), 5) for c in clients), return_exceptions=True
        )
        self._consumer = self._producer = None
        for future in self._awaiting.values():
            if not future.done():
                future.set_exception(BackendUnavailable("rabbitmq stream event log: closed"))
        self._awaiting.clear()
        self._pending.clear()

    async def ping(self) -> None:
        try:
            if self._producer is None or not await asyncio.wait_for(
                self._producer.stream_exists(self.stream), 5
            ):
                raise BackendUnavailable(f"rabbitmq stream event log: no stream {self.stream}")
        except (OSError, TimeoutError, ConnectionError) as exc:
            raise BackendUnavailable(f"rabbitmq stream event log: {exc!r}") from exc

    # --- the tail ---------------------------------------------------------------------------

    def _on_tail(self, body: bytes, context: MessageContext) -> None:
        if context.offset <= self._tail_offset:
            return  # delivered again after a reconnect
        self._tail_offset = context.offset
        kind = body[:1]
        if kind == MARKER:
            self._resolve(body[1 : 1 + TOKEN], 0)
            return
        if kind != RECORD:
            return  # not ours: nothing else writes here, but never guess
        digest = body[1 : 1 + DIGEST]
        sequence = self._sequence_of.get(digest)
        if sequence is None:
            self._offsets.append(context.offset)
            sequence = len(self._offsets)
            self._sequence_of[digest] = sequence
            self._recent.append(body[HEADER:])
            self._grew.set()
            self._grew = asyncio.Event()
        self._pending.pop(digest, None)
        self._resolve(body[1 + DIGEST : HEADER], sequence)

    def _resolve(self, token: bytes, sequence: int) -> None:
        future = self._awaiting.pop(token, None)
        if future is not None and not future.done():
            future.set_result(sequence)

    def _token(self) -> bytes:
        return self._writer + next(self._counter).to_bytes(8, "big")

    def _expect(self, token: bytes) -> asyncio.Future[int]:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._awaiting[token] = future
        return future

    # --- writes -----------------------------------------------------------------------------

    async def append(self, records: Sequence[Record]) -> list[Record]:
        if not records:
            return []
        results: list[asyncio.Future[int] | int] = []
        mine: list[asyncio.Future[int]] = []
        # Checking what is known and publishing happen under one lock, so this process never
        # publishes a record twice and its appends reach the stream in the order they began.
        async with self._publish_lock:
            bodies: list[bytes] = []
            for record in records:
                digest = digest_of(record)
                known = self._sequence_of.get(digest) or self._pending.get(digest)
                if known is not None:
                    results.append(known)
                    continue
                token = self._token()
                future = self._expect(token)
                self._pending[digest] = future
                results.append(future)
                mine.append(future)
                bodies.append(RECORD + digest + token + record.dumps())
            if bodies:
                await self._publish(bodies, *mine)
        await self._settle(mine, ACK_TIMEOUT)
        sequences = [r if isinstance(r, int) else await r for r in results]
        return [r.with_sequence(s) for r, s in zip(records, sequences, strict=True)]

    async def _publish(self, bodies: list[bytes], *futures: asyncio.Future[int]) -> None:
        """Send the entries; a refused publish fails the futures waiting for them."""
        assert self._producer is not None

        def confirmed(status: ConfirmationStatus) -> None:
            if not status.is_confirmed:
                self._fail(futures, f"publish refused (code {status.response_code})")

        try:
            for chunk in chunks(bodies):
                await self._producer.send_batch(self.stream, chunk, on_publish_confirm=confirmed)
        except Exception as exc:
            self._fail(futures, repr(exc))
            raise BackendUnavailable(f"rabbitmq stream event log: {exc!r}") from exc

    async def _settle(self, futures: Sequence[asyncio.Future[int]], within: float) -> None:
        """Wait until the tail has seen every published entry (so the broker committed it)."""
        if not futures:
            return
        done, _ = await asyncio.wait(futures, timeout=within)
        if len(done) < len(futures):
            self._fail(futures, "the stream did not show the published entries in time")
        for future in futures:
            if future.exception() is not None:
                raise BackendUnavailable(f"rabbitmq stream event log: {future.exception()}")

    def _fail(self, futures: Sequence[asyncio.Future[int]], why: str) -> None:
        failing = {id(f) for f in futures}
        for table in (self._awaiting, self._pending):
            for key in [k for k, f in table.items() if id(f) in failing]:
                del table[key]
        for future in futures:
            if not future.done():
                future.set_exception(BackendUnavailable(f"rabbitmq stream event log: {why}"))

    # --- consumer groups --------------------------------------------------------------------

    def _reference(self, group: str) -> str:
        return "g-" + hashlib.sha256(group.encode()).hexdigest()[:40]

    async def commit(self, group: str, sequence: int) -> None:
        async with self._offset_lock:
            if sequence > await self.committed(group):
                await self._store(group, sequence)

    async def seek(self, group: str, sequence: int) -> None:
        async with self._offset_lock:
            await self._store(group, sequence)

    async def _store(self, group: str, sequence: int) -> None:
        assert self._consumer is not None
        try:
            await self._consumer.store_offset(self.stream, self._reference(group), sequence)
        except Exception as exc:
            raise BackendUnavailable(f"rabbitmq stream event log: {exc!r}") from exc

    async def committed(self, group: str) -> int:
        assert self._consumer is not None
        try:
            return int(await self._consumer.query_offset(self.stream, self._reference(group)))
        except OffsetNotFound:
            return 0
        except (StreamDoesNotExist, OSError, ConnectionError) as exc:
            raise BackendUnavailable(f"rabbitmq stream event log: {exc!r}") from exc

    # --- reads ------------------------------------------------------------------------------

    async def last_sequence(self) -> int:
        return len(self._offsets)

    async def read(
        self, after: int = 0, limit: int = 100, where: Filter = EVERYTHING
    ) -> list[Record]:
        known = len(self._offsets)
        if limit <= 0 or after >= known or self._consumer is None:
            return []
        oldest_recent = known - len(self._recent) + 1
        if after + 1 >= oldest_recent:
            return self._read_recent(after, known, oldest_recent, limit, where)
        reader = await self._reader()
        try:
            return await self._read(reader, after, known, limit, where)
        finally:
            self._readers.put_nowait(reader)

    def _read_recent(
        self, after: int, known: int, oldest: int, limit: int, where: Filter
    ) -> list[Record]:
        out: list[Record] = []
        # Synchronous: the tail cannot append while this walks the deque.
        encoded = itertools.islice(self._recent, after + 1 - oldest, known + 1 - oldest)
        for sequence, raw in enumerate(encoded, start=after + 1):
            record = Record.loads(raw, sequence)
            if where.matches(record):
                out.append(record)
                if len(out) == limit:
                    break
        return out

    async def _reader(self) -> Consumer:
        if self._readers.empty() and self._reader_count < READERS:
            self._reader_count += 1
            reader = Consumer(**self._connection, connection_name="meshgate-events-read")
            try:
                await reader.start()
            except Exception as exc:
                self._reader_count -= 1
                raise BackendUnavailable(f"rabbitmq stream event log: {exc!r}") from exc
            return reader
        return await self._readers.get()

    async def _read(
        self, reader: Consumer, after: int, known: int, limit: int, where: Filter
    ) -> list[Record]:
        first, last = self._offsets[max(after, 0)], self._offsets[known - 1]
        out: list[Record] = []
        finished = asyncio.get_running_loop().create_future()

        def on_entry(body: bytes, context: MessageContext) -> None:
            if finished.done() or context.offset < first:
                return
            if body[:1] == RECORD:
                sequence = self._sequence_of.get(body[1 : 1 + DIGEST])
                # Only the first copy of a record counts; a later duplicate has another offset.
                if sequence is not None and self._offsets[sequence - 1] == context.offset:
                    record = Record.loads(body[HEADER:], sequence)
                    if where.matches(record):
                        out.append(record)
            if len(out) >= limit or context.offset >= last:
                finished.set_result(None)

        try:
            subscription = await reader.subscribe(
                self.stream,
                on_entry,
                offset_specification=ConsumerOffsetSpecification(OffsetType.OFFSET, first),
                initial_credit=32,
            )
        except Exception as exc:
            raise BackendUnavailable(f"rabbitmq stream event log: {exc!r}") from exc
        try:
            await asyncio.wait_for(asyncio.shield(finished), ACK_TIMEOUT)
        except TimeoutError as exc:
            raise BackendUnavailable("rabbitmq stream event log: read timed out") from exc
        finally:
            with contextlib.suppress(Exception):
                await reader.unsubscribe(subscription)
        return out[:limit]

    async def wait(self, after: int, within: float) -> None:
        deadline = time.monotonic() + within
        while len(self._offsets) <= after:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            grew = self._grew
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await grew.wait()


def chunks(bodies: list[bytes]) -> list[list[bytes]]:
    """Split into publish frames under the broker's frame size."""
    out: list[list[bytes]] = [[]]
    size = 0
    for body in bodies:
        if out[-1] and size + len(body) > MAX_FRAME_BYTES:
            out.append([])
            size = 0
        out[-1].append(body)
        size += len(body) + 16
    return out
