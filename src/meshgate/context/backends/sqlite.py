"""SQLite context store: the embedded default, in its own file (``<data_dir>/context.db``).

Durability: WAL with ``synchronous=FULL``, so an acknowledged write is on disk before the
call returns and survives a crash of the process or of the machine (NORMAL would only survive
the process). Writes here are small and rare next to reads, so the extra fsync is cheap.

Every call runs as one function on a dedicated thread that owns its connection: one thread
for writes, so a multi-statement write is one transaction, and one for reads, so a read never
queues behind a write's fsync (WAL lets readers and the writer work at once). The event loop
never blocks on disk.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import orjson

from meshgate.context.model import (
    Erased,
    Interaction,
    Json,
    Session,
    SessionView,
    UserExport,
    UserProfile,
)
from meshgate.errors import BackendUnavailable

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
  tenant TEXT NOT NULL, user_id TEXT NOT NULL, attributes BLOB NOT NULL,
  preferences BLOB NOT NULL, version INTEGER NOT NULL, updated_at REAL NOT NULL,
  PRIMARY KEY (tenant, user_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS sessions (
  tenant TEXT NOT NULL, session_id TEXT NOT NULL, user_id TEXT NOT NULL, channel TEXT NOT NULL,
  ttl_seconds INTEGER NOT NULL, state BLOB NOT NULL, created_at REAL NOT NULL,
  expires_at REAL NOT NULL, PRIMARY KEY (tenant, session_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS sessions_by_user ON sessions (tenant, user_id);
CREATE INDEX IF NOT EXISTS sessions_by_expiry ON sessions (expires_at);
CREATE TABLE IF NOT EXISTS interactions (
  id INTEGER PRIMARY KEY AUTOINCREMENT, tenant TEXT NOT NULL, session_id TEXT NOT NULL,
  record BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS interactions_by_session ON interactions (tenant, session_id, id);
CREATE TABLE IF NOT EXISTS policies (
  tenant TEXT NOT NULL, consumer TEXT NOT NULL, allow BLOB NOT NULL,
  PRIMARY KEY (tenant, consumer)) WITHOUT ROWID;
"""


def _user(row: tuple[Any, ...]) -> UserProfile:
    return UserProfile(row[0], orjson.loads(row[1]), orjson.loads(row[2]), row[3], row[4])


def _session(row: tuple[Any, ...]) -> Session:
    return Session(row[0], row[1], row[2], row[3], orjson.loads(row[4]), row[5], row[6])


def _execute(db: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> int:
    return db.execute(sql, params).rowcount


def _fetch_one(db: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> Any:
    return db.execute(sql, params).fetchone()


def _fetch_all(db: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> list[Any]:
    return db.execute(sql, params).fetchall()


USER_COLS = "user_id, attributes, preferences, version, updated_at"
SESSION_COLS = "session_id, user_id, channel, ttl_seconds, state, created_at, expires_at"


class SqliteContextStore:
    def __init__(self, path: Path, *, clock: Callable[[], float] | None = None):
        self.path = path
        self._clock = clock or time.time
        self._writer: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._write_thread = ThreadPoolExecutor(1, thread_name_prefix="context-sqlite-write")
        self._read_thread = ThreadPoolExecutor(1, thread_name_prefix="context-sqlite-read")

    async def _call(
        self, thread: ThreadPoolExecutor, fn: Callable[..., T], db: sqlite3.Connection, *args: Any
    ) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(thread, fn, db, *args)
        except sqlite3.Error as exc:
            raise BackendUnavailable(f"context store (SQLite) failed: {exc}") from exc

    async def _read(self, fn: Callable[..., T], *args: Any) -> T:
        assert self._reader is not None, "start() first"
        return await self._call(self._read_thread, fn, self._reader, *args)

    async def _write(self, fn: Callable[..., T], *args: Any) -> T:
        assert self._writer is not None, "start() first"
        return await self._call(self._write_thread, fn, self._writer, *args)

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA busy_timeout=5000")
        db.execute("PRAGMA synchronous=FULL")
        return db

    def _open_writer(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = self._connect()
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(SCHEMA)
        return db

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._writer = await loop.run_in_executor(self._write_thread, self._open_writer)
        self._reader = await loop.run_in_executor(self._read_thread, self._connect)

    async def close(self) -> None:
        loop = asyncio.get_running_loop()
        if self._reader is not None:
            await loop.run_in_executor(self._read_thread, self._reader.close)
            self._reader = None
        if self._writer is not None:
            await loop.run_in_executor(self._write_thread, self._writer.close)
            self._writer = None
        self._read_thread.shutdown(wait=True)
        self._write_thread.shutdown(wait=True)

    async def ping(self) -> None:
        await self._read(lambda db: db.execute("SELECT 1").fetchone())

    # --- users ---------------------------------------------------------------------------

    def _get_user(self, db: sqlite3.Connection, tenant: str, user_id: str) -> UserProfile | None:
        row = db.execute(
            f"SELECT {USER_COLS} FROM users WHERE tenant = ? AND user_id = ?", (tenant, user_id)
        ).fetchone()
        return _user(row) if row else None

    async def get_user(self, tenant: str, user_id: str) -> UserProfile | None:
        return await self._read(self._get_user, tenant, user_id)

    def _put_user(self, db: sqlite3.Connection, tenant: str, p: UserProfile) -> bool:
        attrs, prefs = orjson.dumps(p.attributes), orjson.dumps(p.preferences)
        if p.version == 1:
            cur = db.execute(
                f"INSERT INTO users (tenant, {USER_COLS}) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (tenant, p.user_id, attrs, prefs, p.version, p.updated_at),
            )
        else:
            cur = db.execute(
                "UPDATE users SET attributes = ?, preferences = ?, version = ?, updated_at = ? "
                "WHERE tenant = ? AND user_id = ? AND version = ?",
                (attrs, prefs, p.version, p.updated_at, tenant, p.user_id, p.version - 1),
            )
        return cur.rowcount == 1

    async def put_user(self, tenant: str, profile: UserProfile) -> bool:
        return await self._write(self._put_user, tenant, profile)

    # --- sessions and interactions ---------------------------------------------------------

    async def create_session(self, tenant: str, s: Session) -> None:
        await self._write(
            _execute,
            f"INSERT INTO sessions (tenant, {SESSION_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                tenant,
                s.session_id,
                s.user_id,
                s.channel,
                s.ttl_seconds,
                orjson.dumps(s.state),
                s.created_at,
                s.expires_at,
            ),
        )

    def _items(
        self, db: sqlite3.Connection, tenant: str, session_id: str, last: int
    ) -> tuple[Interaction, ...]:
        if last <= 0:
            return ()
        rows = db.execute(
            "SELECT record FROM interactions WHERE tenant = ? AND session_id = ? "
            "ORDER BY id DESC LIMIT ?",
            (tenant, session_id, last),
        ).fetchall()
        return tuple(Interaction.from_record(orjson.loads(r[0])) for r in reversed(rows))

    def _get_session(
        self, db: sqlite3.Connection, tenant: str, session_id: str, last: int
    ) -> SessionView | None:
        row = db.execute(
            f"SELECT {SESSION_COLS} FROM sessions "
            "WHERE tenant = ? AND session_id = ? AND expires_at > ?",
            (tenant, session_id, self._clock()),
        ).fetchone()
        if row is None:
            return None
        return SessionView(_session(row), self._items(db, tenant, session_id, last))

    async def get_session(
        self, tenant: str, session_id: str, *, last: int = 0
    ) -> SessionView | None:
        return await self._read(self._get_session, tenant, session_id, last)

    def _get_context(
        self,
        db: sqlite3.Connection,
        tenant: str,
        user_id: str | None,
        session_id: str | None,
        last: int,
    ) -> tuple[UserProfile | None, SessionView | None]:
        user = self._get_user(db, tenant, user_id) if user_id else None
        view = self._get_session(db, tenant, session_id, last) if session_id else None
        return user, view

    async def get_context(
        self, tenant: str, user_id: str | None, session_id: str | None, *, last: int
    ) -> tuple[UserProfile | None, SessionView | None]:
        return await self._read(self._get_context, tenant, user_id, session_id, last)

    async def put_session_state(self, tenant: str, session_id: str, state: Json) -> bool:
        updated = await self._write(
            _execute,
            "UPDATE sessions SET state = ? WHERE tenant = ? AND session_id = ? AND expires_at > ?",
            (orjson.dumps(state), tenant, session_id, self._clock()),
        )
        return updated == 1

    def _append(
        self,
        db: sqlite3.Connection,
        tenant: str,
        session_id: str,
        items: list[Interaction],
        keep: int,
    ) -> bool:
        db.execute("BEGIN IMMEDIATE")
        try:
            live = db.execute(
                "SELECT 1 FROM sessions WHERE tenant = ? AND session_id = ? AND expires_at > ?",
                (tenant, session_id, self._clock()),
            ).fetchone()
            if live:
                db.executemany(
                    "INSERT INTO interactions (tenant, session_id, record) VALUES (?, ?, ?)",
                    [(tenant, session_id, orjson.dumps(i.to_record())) for i in items],
                )
                db.execute(
                    "DELETE FROM interactions WHERE tenant = ? AND session_id = ? AND id <= "
                    "(SELECT id FROM interactions WHERE tenant = ? AND session_id = ? "
                    "ORDER BY id DESC LIMIT 1 OFFSET ?)",
                    (tenant, session_id, tenant, session_id, keep),
                )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return live is not None

    async def append_interactions(
        self, tenant: str, session_id: str, items: list[Interaction], *, keep: int
    ) -> bool:
        return await self._write(self._append, tenant, session_id, items, keep)

    # --- export and erasure ----------------------------------------------------------------

    def _export(self, db: sqlite3.Connection, tenant: str, user_id: str) -> UserExport:
        db.execute("BEGIN")  # one snapshot for the whole export
        try:
            export = UserExport(self._get_user(db, tenant, user_id))
            rows = db.execute(
                f"SELECT {SESSION_COLS} FROM sessions WHERE tenant = ? AND user_id = ? "
                "AND expires_at > ? ORDER BY created_at",
                (tenant, user_id, self._clock()),
            ).fetchall()
            for row in rows:
                items = self._items(db, tenant, row[0], 1 << 30)
                export.sessions.append(SessionView(_session(row), items))
        finally:
            db.execute("COMMIT")
        return export

    async def export_user(self, tenant: str, user_id: str) -> UserExport:
        return await self._read(self._export, tenant, user_id)

    def _erase(self, db: sqlite3.Connection, tenant: str, user_id: str) -> Erased:
        db.execute("BEGIN IMMEDIATE")
        try:
            ids = [
                r[0]
                for r in db.execute(
                    "SELECT session_id FROM sessions WHERE tenant = ? AND user_id = ?",
                    (tenant, user_id),
                )
            ]
            records = db.execute(
                "DELETE FROM users WHERE tenant = ? AND user_id = ?", (tenant, user_id)
            ).rowcount
            for sid in ids:
                records += db.execute(
                    "DELETE FROM interactions WHERE tenant = ? AND session_id = ?", (tenant, sid)
                ).rowcount
            records += db.execute(
                "DELETE FROM sessions WHERE tenant = ? AND user_id = ?", (tenant, user_id)
            ).rowcount
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return Erased(records, tuple(ids))

    async def erase_user(self, tenant: str, user_id: str) -> Erased:
        return await self._write(self._erase, tenant, user_id)

    def _purge(self, db: sqlite3.Connection) -> int:
        db.execute("BEGIN IMMEDIATE")
        try:
            now = self._clock()
            db.execute(
                "DELETE FROM interactions WHERE (tenant, session_id) IN "
                "(SELECT tenant, session_id FROM sessions WHERE expires_at <= ?)",
                (now,),
            )
            gone = db.execute("DELETE FROM sessions WHERE expires_at <= ?", (now,)).rowcount
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return gone

    async def purge_expired(self) -> int:
        return await self._write(self._purge)

    # --- policies ----------------------------------------------------------------------------

    async def get_policy(self, tenant: str, consumer: str) -> list[str] | None:
        row = await self._read(
            _fetch_one,
            "SELECT allow FROM policies WHERE tenant = ? AND consumer = ?",
            (tenant, consumer),
        )
        return orjson.loads(row[0]) if row else None

    async def put_policy(self, tenant: str, consumer: str, allow: list[str]) -> None:
        await self._write(
            _execute,
            "INSERT INTO policies (tenant, consumer, allow) VALUES (?, ?, ?) "
            "ON CONFLICT (tenant, consumer) DO UPDATE SET allow = excluded.allow",
            (tenant, consumer, orjson.dumps(allow)),
        )

    async def delete_policy(self, tenant: str, consumer: str) -> bool:
        deleted = await self._write(
            _execute, "DELETE FROM policies WHERE tenant = ? AND consumer = ?", (tenant, consumer)
        )
        return deleted == 1

    async def list_policies(self, tenant: str) -> dict[str, list[str]]:
        rows = await self._read(
            _fetch_all,
            "SELECT consumer, allow FROM policies WHERE tenant = ? ORDER BY consumer",
            (tenant,),
        )
        return {r[0]: orjson.loads(r[1]) for r in rows}
