"""SQLite event log (embedded default): WAL mode, one writer thread with group commit.

Every append goes through a queue to one dedicated writer thread. The thread takes whatever
is queued, writes it in one transaction and commits with ``synchronous=FULL``, so concurrent
producers share one fsync, and only then resolves their futures: an acknowledged append is
on disk. Reads use their own connection in a worker thread (WAL lets them run beside the
writer), so the event loop never blocks on the file.
"""

from __future__ import annotations

import asyncio
import contextlib
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
INSERT = (
    "INSERT OR IGNORE INTO events (tenant, source, id, type, subject, body)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)
EXISTING = "SELECT seq FROM events WHERE tenant = ? AND source = ? AND id = ?"
_STOP = object()


class _Job:
    """One caller's appends (or offset commit) waiting for the next group commit."""

    __slots__ = ("future", "kind", "payload", "result")

    def __init__(self, kind: str, payload: Any, future: asyncio.Future[Any]):
        self.kind = kind
        self.payload = payload
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
        self._read_lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._last = 0
        self._changed = asyncio.Event()

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        ready: asyncio.Future[None] = self._loop.create_future()
        self._writer = threading.Thread(
            target=self._write_loop, args=(ready,), name="event-log-writer", daemon=True
        )
        self._writer.start()
        await ready
        self._reader = await asyncio.to_thread(self._connect)
        self._last = await self.last_sequence()

    async def close(self) -> None:
        if self._writer is not None:
            self._jobs.put(_STOP)
            await asyncio.to_thread(self._writer.join)
            self._writer = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    async def ping(self) -> None:
        await self.last_sequence()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=5000")
        return conn

    # --- writes -----------------------------------------------------------------------------

    async def append(self, records: Sequence[Record]) -> list[Record]:
        if not records:
            return []
        sequences: list[int] = await self._submit("append", records)
        return [r.with_sequence(s) for r, s in zip(records, sequences, strict=True)]

    async def commit(self, group: str, sequence: int) -> None:
        await self._submit("commit", (group, sequence))

    async def seek(self, group: str, sequence: int) -> None:
        await self._submit("seek", (group, sequence))

    def _submit(self, kind: str, payload: Any) -> asyncio.Future[Any]:
        if self._writer is None or self._loop is None:
            raise BackendUnavailable("event log is not started")
        future = self._loop.create_future()
        self._jobs.put(_Job(kind, payload, future))
        return future

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
                first = self._jobs.get()
                if first is _STOP:
                    return
                batch, stop = self._drain(first)
                self._write_batch(conn, batch)
                if stop:
                    return
        finally:
            conn.close()

    def _drain(self, first: _Job) -> tuple[list[_Job], bool]:
        batch, rows = [first], _rows(first)
        while rows < self.max_batch:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                break
            if job is _STOP:
                return batch, True
            batch.append(job)
            rows += _rows(job)
        return batch, False

    def _write_batch(self, conn: sqlite3.Connection, batch: list[_Job]) -> None:
        assert self._loop is not None
        appends = []
        for job in batch:
            if job.kind != "append":
                continue
            try:
                job.payload = [(r, r.dumps()) for r in job.payload]
                appends.append(job)
            except TypeError as exc:
                self._loop.call_soon_threadsafe(_fail, [job], BackendUnavailable(str(exc)))
                job.kind = "failed"
        try:
            conn.execute("BEGIN IMMEDIATE")
            if appends:
                _insert(conn, appends)
            for job in batch:
                if job.kind in ("commit", "seek"):
                    _set_offset(conn, job)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            error = BackendUnavailable(f"sqlite event log: {exc}")
            self._loop.call_soon_threadsafe(_fail, batch, error)
            return
        self._loop.call_soon_threadsafe(self._resolve, batch)

    def _resolve(self, batch: list[_Job]) -> None:
        for job in batch:
            if job.kind == "append" and job.result:
                self._last = max(self._last, *job.result)
            if not job.future.done():
                job.future.set_result(job.result)
        self._changed.set()
        self._changed = asyncio.Event()

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
        rows = await self._query("SELECT coalesce(max(seq), 0) FROM events", [])
        return int(rows[0][0])

    async def committed(self, group: str) -> int:
        rows = await self._query("SELECT seq FROM consumer_offsets WHERE grp = ?", [group])
        return int(rows[0][0]) if rows else 0

    async def wait(self, after: int, within: float) -> None:
        deadline = time.monotonic() + within
        while self._last <= after:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            # Appends of this process wake us at once; another process's after a poll.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, self.poll_interval))
            self._last = max(self._last, await self.last_sequence())

    async def _query(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        return await asyncio.to_thread(self._query_sync, sql, params)

    def _query_sync(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        if self._reader is None:
            raise BackendUnavailable("event log is not started")
        with self._read_lock:
            try:
                return self._reader.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise BackendUnavailable(f"sqlite event log: {exc}") from exc


def _insert(conn: sqlite3.Connection, jobs: list[_Job]) -> None:
    """Insert every job's records; set each job's result to their sequences."""
    rows = [
        (r.tenant, r.source, r.id, r.type, r.subject, body)
        for job in jobs
        for r, body in job.payload
    ]
    # Fast path: one executemany. With a single writer and INTEGER PRIMARY KEY the new rows
    # take consecutive sequences, so the last one gives them all.
    conn.execute("SAVEPOINT batch")
    before = conn.total_changes
    conn.executemany(INSERT, rows)
    if conn.total_changes - before == len(rows):
        conn.execute("RELEASE batch")
        sequence = conn.execute("SELECT last_insert_rowid()").fetchone()[0] - len(rows) + 1
        for job in jobs:
            job.result = list(range(sequence, sequence + len(job.payload)))
            sequence += len(job.payload)
        return
    # A duplicate was ignored somewhere: redo row by row to learn which sequences exist.
    conn.execute("ROLLBACK TO batch")
    conn.execute("RELEASE batch")
    for job in jobs:
        sequences = []
        for r, body in job.payload:
            cursor = conn.execute(INSERT, (r.tenant, r.source, r.id, r.type, r.subject, body))
            if cursor.rowcount == 1:
                sequences.append(cursor.lastrowid)
            else:
                sequences.append(conn.execute(EXISTING, (r.tenant, r.source, r.id)).fetchone()[0])
        job.result = sequences


def _set_offset(conn: sqlite3.Connection, job: _Job) -> None:
    group, sequence = job.payload
    keep = "max(seq, excluded.seq)" if job.kind == "commit" else "excluded.seq"
    conn.execute(
        "INSERT INTO consumer_offsets (grp, seq) VALUES (?, ?)"
        f" ON CONFLICT (grp) DO UPDATE SET seq = {keep}",
        (group, sequence),
    )


def _rows(job: _Job) -> int:
    return len(job.payload) if job.kind == "append" else 1


def _fail(batch: list[_Job], error: Exception) -> None:
    for job in batch:
        if not job.future.done():
            job.future.set_exception(error)
