"""SQLite event log (embedded default): WAL mode, one writer thread with group commit.

Every append goes through a queue to one dedicated writer thread. The thread takes whatever
is queued, writes it in one transaction and commits with ``synchronous=FULL``, so concurrent
producers share one fsync, and only then resolves their futures: an acknowledged append is
on disk. Reads use their own connection in a worker thread (WAL lets them run beside the
writer), so the event loop never blocks on the file; only the two point lookups (the last
sequence, a group's offset: one B-tree descent each) run on the loop, on a connection of their
own, since handing them to a thread cost several times the query itself on every poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import queue
import sqlite3
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from meshgate.errors import BackendUnavailable
from meshgate.events.base import EVERYTHING, Filter
from meshgate.events.envelope import Record

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    source TEXT NOT NULL,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    subject TEXT,
    body BLOB NOT NULL,
    UNIQUE (tenant, source, id)
);
-- Reads are always by tenant, in log order: without these, SQLite sorts the tenant's rows.
CREATE INDEX IF NOT EXISTS events_tenant_seq ON events (tenant, seq);
CREATE INDEX IF NOT EXISTS events_tenant_type ON events (tenant, type, seq);
CREATE TABLE IF NOT EXISTS consumer_offsets (grp TEXT PRIMARY KEY, seq INTEGER NOT NULL);
"""
COLUMNS = ("tenant", "source", "id", "type", "subject", "body")
# Rows per INSERT statement (6 parameters a row; SQLite allows 32766 a statement).
INSERT_CHUNK = 500
EXISTING = "SELECT seq FROM events WHERE tenant = ? AND source = ? AND id = ?"
_STOP = object()
# The loop's point lookups give up waiting on a lock this soon and retry in a thread.
PEEK_BUSY_MS = 20


class _Job:
    """One caller's appends (or offset commit) waiting for the next group commit."""

    __slots__ = ("count", "future", "kind", "payload", "result")

    def __init__(self, kind: str, payload: Any, count: int, future: asyncio.Future[Any]):
        self.kind = kind
        self.payload = payload
        """For appends, the rows' column values flattened (``len(COLUMNS)`` a row)."""
        self.count = count
        self.future = future
        self.result: Any = None


class SqliteEventLog:
    name = "sqlite"

    def __init__(self, path: str, *, poll_interval: float = 0.2, max_batch: int = 2048):
        self.path = path
        self.poll_interval = poll_interval
        self.max_batch = max_batch
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._writer: threading.Thread | None = None
        self._reader: sqlite3.Connection | None = None
        self._peeker: sqlite3.Connection | None = None
        """Point lookups, on the loop's thread only (never behind ``_read_lock``)."""
        self._read_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last = 0
        self._changed = asyncio.Event()
        # Loop side of the group commit: jobs gather here while a batch is being written and
        # go to the writer together, so the writer thread wakes once per commit, not per job.
        self._waiting: list[_Job] = []
        self._in_flight = False
        self._handover_due = False
        self._closing = False

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        self._waiting, self._in_flight, self._handover_due = [], False, False
        self._closing = False
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        ready: asyncio.Future[None] = self._loop.create_future()
        self._writer = threading.Thread(
            target=self._write_loop, args=(ready,), name="event-log-writer", daemon=True
        )
        self._writer.start()
        await ready
        self._reader = await asyncio.to_thread(self._connect)
        self._peeker = await asyncio.to_thread(self._connect, PEEK_BUSY_MS)
        self._last = await self.last_sequence()

    async def close(self) -> None:
        if self._writer is not None:
            self._closing = True
            if self._waiting:
                # Written before the stop: the writer takes batches in order.
                self._jobs.put(self._waiting)
                self._waiting = []
            self._jobs.put(_STOP)
            await asyncio.to_thread(self._writer.join)
            self._writer = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._peeker is not None:
            self._peeker.close()
            self._peeker = None

    async def ping(self) -> None:
        await self.last_sequence()

    def _connect(self, busy_ms: int = 5000) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, cached_statements=256
        )
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        return conn

    # --- writes -----------------------------------------------------------------------------

    async def append(self, records: Sequence[Record]) -> list[Record]:
        if not records:
            return []
        values: list[Any] = []
        try:
            for r in records:
                values += (r.tenant, r.source, r.id, r.type, r.subject, r.dumps())
        except TypeError as exc:
            raise BackendUnavailable(str(exc)) from exc
        sequences: list[int] = await self._submit("append", values, len(records))
        return [r.with_sequence(s) for r, s in zip(records, sequences, strict=True)]

    async def commit(self, group: str, sequence: int) -> None:
        await self._submit("commit", (group, sequence), 1)

    async def seek(self, group: str, sequence: int) -> None:
        await self._submit("seek", (group, sequence), 1)

    def _submit(self, kind: str, payload: Any, count: int) -> asyncio.Future[Any]:
        if self._writer is None or self._loop is None or self._closing:
            raise BackendUnavailable("event log is not started")
        future = self._loop.create_future()
        self._waiting.append(_Job(kind, payload, count, future))
        if not self._in_flight and not self._handover_due:
            # At the end of this loop iteration, so the jobs of one iteration share a batch.
            self._handover_due = True
            self._loop.call_soon(self._hand_over)
        return future

    def _hand_over(self) -> None:
        """Give the waiting jobs (up to ``max_batch`` rows) to the writer, one batch at a time."""
        self._handover_due = False
        if self._in_flight or not self._waiting or self._closing:
            return
        batch, rows = self._waiting, 0
        for n, job in enumerate(batch):
            rows += job.count
            if rows >= self.max_batch:
                batch, self._waiting = batch[: n + 1], batch[n + 1 :]
                break
        else:
            self._waiting = []
        self._in_flight = True
        self._jobs.put(batch)

    def _write_loop(self, ready: asyncio.Future[None]) -> None:
        assert self._loop is not None
        try:
            conn = self._connect()
            conn.executescript(SCHEMA)
        except sqlite3.Error as exc:
            error = BackendUnavailable(f"sqlite event log {self.path}: {exc}")
            self._loop.call_soon_threadsafe(ready.set_exception, error)
            return
        self._loop.call_soon_threadsafe(ready.set_result, None)
        try:
            while True:
                batch = self._jobs.get()
                if batch is _STOP:
                    return
                self._write_batch(conn, batch)
        finally:
            conn.close()

    def _write_batch(self, conn: sqlite3.Connection, batch: list[_Job]) -> None:
        assert self._loop is not None
        appends = [job for job in batch if job.kind == "append"]
        offsets = [job for job in batch if job.kind != "append"]
        try:
            _write(conn, appends, offsets)
        except Exception as exc:  # the writer thread must outlive any one batch
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            error = BackendUnavailable(f"sqlite event log: {exc}")
            self._loop.call_soon_threadsafe(self._finish, batch, error)
            return
        self._loop.call_soon_threadsafe(self._finish, batch, None)

    def _finish(self, batch: list[_Job], error: Exception | None) -> None:
        for job in batch:
            if job.future.done():
                continue
            if error is not None:
                job.future.set_exception(error)
                continue
            if job.kind == "append" and job.result:
                self._last = max(self._last, *job.result)
            job.future.set_result(job.result)
        if error is None:
            self._changed.set()
            self._changed = asyncio.Event()
        self._in_flight = False
        if self._waiting:
            self._hand_over()

    # --- reads ------------------------------------------------------------------------------

    async def read(
        self, after: int = 0, limit: int = 100, where: Filter = EVERYTHING
    ) -> list[Record]:
        sql = ["SELECT seq, body FROM events WHERE seq > ?"]
        params: list[Any] = [after]
        if where.tenant is not None:
            sql.append("AND tenant = ?")
            params.append(where.tenant)
        if where.type is not None:
            sql.append("AND type = ?")
            params.append(where.type)
        if where.type_prefix:
            sql.append("AND substr(type, 1, ?) = ?")
            params += [len(where.type_prefix), where.type_prefix]
        if where.subject is not None:
            sql.append("AND subject = ?")
            params.append(where.subject)
        sql.append("ORDER BY seq LIMIT ?")
        params.append(limit)
        rows = await self._query(" ".join(sql), params)
        return [Record.loads(body, seq) for seq, body in rows]

    async def last_sequence(self) -> int:
        rows = await self._peek("SELECT coalesce(max(seq), 0) FROM events", [])
        return int(rows[0][0])

    async def committed(self, group: str) -> int:
        rows = await self._peek("SELECT seq FROM consumer_offsets WHERE grp = ?", [group])
        return int(rows[0][0]) if rows else 0

    async def wait(self, after: int, within: float) -> None:
        deadline = time.monotonic() + within
        while self._last <= after:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            # Appends of this process wake us at once (``_last`` is already past them);
            # another process's are seen by the query after a poll.
            try:
                await asyncio.wait_for(self._changed.wait(), min(left, self.poll_interval))
            except TimeoutError:
                self._last = max(self._last, await self.last_sequence())

    async def _query(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        return await asyncio.to_thread(self._query_sync, sql, params)

    async def _peek(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        """A point lookup on the loop; in a thread like any read when the file is locked
        (WAL readers wait only while another connection recovers the log)."""
        if self._peeker is None:
            raise BackendUnavailable("event log is not started")
        try:
            return self._peeker.execute(sql, params).fetchall()
        except sqlite3.OperationalError:
            return await self._query(sql, params)
        except sqlite3.Error as exc:
            raise BackendUnavailable(f"sqlite event log: {exc}") from exc

    def _query_sync(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        if self._reader is None:
            raise BackendUnavailable("event log is not started")
        with self._read_lock:
            try:
                return self._reader.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise BackendUnavailable(f"sqlite event log: {exc}") from exc


def _write(conn: sqlite3.Connection, appends: list[_Job], offsets: list[_Job]) -> None:
    """Write one batch durably; set each append job's result to its records' sequences."""
    values: list[Any] = []
    for job in appends:
        values += job.payload
    rows = len(values) // len(COLUMNS)
    # The common batch is one INSERT statement, which SQLite runs as its own transaction
    # (fsync'd on commit with synchronous=FULL): one call into SQLite, one GIL hand-off.
    alone = not offsets and rows <= INSERT_CHUNK
    if not alone:
        conn.execute("BEGIN IMMEDIATE")
    before, last = conn.total_changes, 0
    for start in range(0, rows, INSERT_CHUNK):
        chunk = values[start * len(COLUMNS) : (start + INSERT_CHUNK) * len(COLUMNS)]
        last = conn.execute(_insert_sql(len(chunk) // len(COLUMNS)), chunk).lastrowid or 0
    if conn.total_changes - before == rows:
        # With a single writer and INTEGER PRIMARY KEY the new rows take consecutive
        # sequences, so the last one gives them all.
        sequence = last - rows + 1
        for job in appends:
            job.result = list(range(sequence, sequence + job.count))
            sequence += job.count
    else:
        # A duplicate was ignored somewhere: every record's sequence is that of the row
        # stored under its (tenant, source, id), whether just inserted or there before.
        for job in appends:
            keys = job.payload
            job.result = [
                conn.execute(EXISTING, keys[i : i + 3]).fetchone()[0]
                for i in range(0, len(keys), len(COLUMNS))
            ]
    for job in offsets:
        _set_offset(conn, job)
    if not alone:
        conn.execute("COMMIT")


@functools.lru_cache(maxsize=INSERT_CHUNK)
def _insert_sql(rows: int) -> str:
    one = "(" + ", ".join("?" * len(COLUMNS)) + ")"
    return f"INSERT OR IGNORE INTO events ({', '.join(COLUMNS)}) VALUES " + ", ".join([one] * rows)


def _set_offset(conn: sqlite3.Connection, job: _Job) -> None:
    group, sequence = job.payload
    keep = "max(seq, excluded.seq)" if job.kind == "commit" else "excluded.seq"
    conn.execute(
        "INSERT INTO consumer_offsets (grp, seq) VALUES (?, ?)"
        f" ON CONFLICT (grp) DO UPDATE SET seq = {keep}",
        (group, sequence),
    )
