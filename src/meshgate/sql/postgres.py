"""PostgreSQL backend of the SQL store (scale-out), on a psycopg async pool."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import lru_cache

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from meshgate.errors import BackendUnavailable
from meshgate.sql.base import Params, Row, SqlSession


@lru_cache(maxsize=1024)
def _translate(sql: str) -> str:
    return re.sub(r"\?", "%s", sql.replace("%", "%%"))


class _Session:
    def __init__(self, conn: psycopg.AsyncConnection[Row]):
        self._conn = conn

    async def execute(self, sql: str, params: Params = ()) -> int:
        cursor = await self._conn.execute(_translate(sql), tuple(params))
        return cursor.rowcount

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        cursor = await self._conn.execute(_translate(sql), tuple(params))
        return await cursor.fetchone()

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        cursor = await self._conn.execute(_translate(sql), tuple(params))
        return await cursor.fetchall()


class PostgresStore:
    dialect = "postgresql"

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 10):
        self.url = url.replace("postgres://", "postgresql://", 1)
        self._pool = AsyncConnectionPool(
            self.url,
            min_size=min_size,
            max_size=max_size,
            open=False,
            kwargs={"row_factory": dict_row, "autocommit": True},
        )

    async def start(self) -> None:
        try:
            await self._pool.open(wait=True, timeout=10)
        except (psycopg.Error, PoolTimeout) as exc:
            raise BackendUnavailable(f"postgresql: {exc}") from exc

    async def close(self) -> None:
        await self._pool.close()

    async def ping(self) -> None:
        await self.fetch_one("SELECT 1 AS ok")

    def render(self, ddl: str) -> str:
        return ddl.format(blob="BYTEA", autoinc="BIGSERIAL PRIMARY KEY")

    async def execute(self, sql: str, params: Params = ()) -> int:
        async with self._connection() as conn:
            return await _Session(conn).execute(sql, params)

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        async with self._connection() as conn:
            return await _Session(conn).fetch_one(sql, params)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._connection() as conn:
            return await _Session(conn).fetch_all(sql, params)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlSession]:
        async with self._connection() as conn, conn.transaction():
            yield _Session(conn)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Row]]:
        try:
            async with self._pool.connection(timeout=5) as conn:
                yield conn
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise BackendUnavailable(f"postgresql: {exc}") from exc
