"""SQLite backend of the SQL store (embedded default), WAL mode, one serialized connection."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Awaitable
from contextlib import AbstractContextManager, asynccontextmanager
from pathlib import Path
from typing import TypeVar

import aiosqlite

from meshgate.errors import BackendUnavailable, Conflict
from meshgate.sql.base import Params, Row, SqlSession

T = TypeVar("T")


class _Session:
    def __init__(self, conn: aiosqlite.Connection):
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> int:
        try:
            cursor = await self._conn.execute(sql, tuple(params))
        except sqlite3.IntegrityError as exc:
            raise _typed(exc) from exc
        return cursor.rowcount

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        try:
            async with self._conn.execute(sql, tuple(params)) as cursor:
                row = await cursor.fetchone()
        except sqlite3.IntegrityError as exc:
            raise _typed(exc) from exc
        return dict(row) if row is not None else None

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._conn.execute(sql, tuple(params)) as cursor:
            rows = await cursor.fetchall()
        return [dict(r) for r in rows]


def _typed(exc: sqlite3.IntegrityError) -> Exception:
    """A unique violation is a :class:`Conflict`, as on PostgreSQL; other integrity errors
    (foreign keys, NOT NULL) stay the driver's."""
    if "UNIQUE" in str(exc) or "PRIMARY KEY" in str(exc):
        return Conflict("a record with the same key already exists")
    return exc


class SqliteStore:
    dialect = "sqlite"

    def __init__(self, path: str):
        self.path = path
        self._conn: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = await aiosqlite.connect(self.path, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        await self._conn.execute("PRAGMA journal_mode=WAL")
        await self._conn.execute("PRAGMA synchronous=FULL")
        await self._conn.execute("PRAGMA busy_timeout=5000")
        await self._conn.execute("PRAGMA foreign_keys=ON")

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def ping(self) -> None:
        await self.fetch_one("SELECT 1 AS ok")

    def patient(self, seconds: float) -> AbstractContextManager[None]:
        return contextlib.nullcontext()  # one process's file: nobody to wait for

    def hurry(self, seconds: float) -> None:
        pass  # a local file answers or fails at once

    def render(self, ddl: str) -> str:
        return ddl.format(blob="BLOB", autoinc="INTEGER PRIMARY KEY AUTOINCREMENT")

    @property
    def _session(self) -> _Session:
        if self._conn is None:
            raise BackendUnavailable("SQL store is not started")
        return _Session(self._conn)

    async def execute(self, sql: str, params: Params = ()) -> int:
        async with self._lock:
            return await self._guard(self._session.execute(sql, params))

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        async with self._lock:
            return await self._guard(self._session.fetch_one(sql, params))

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._lock:
            return await self._guard(self._session.fetch_all(sql, params))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlSession]:
        async with self._lock:
            session = self._session
            await session.execute("BEGIN IMMEDIATE")
            try:
                yield session
            except BaseException:
                await session.execute("ROLLBACK")
                raise
            await session.execute("COMMIT")

    @staticmethod
    async def _guard(awaitable: Awaitable[T]) -> T:
        try:
            return await awaitable
        except sqlite3.OperationalError as exc:
            raise BackendUnavailable(f"sqlite: {exc}") from exc
