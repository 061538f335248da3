"""PostgreSQL backend of the SQL store (scale-out), on a psycopg async pool.

Every statement, and every wait for a pooled connection, is bounded by ``timeout`` (the
``backend_timeout_seconds`` setting): a PostgreSQL that is down or frozen costs a request a
503 within that time. The pool reconnects by itself once the server is back.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import lru_cache

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from meshgate.errors import Conflict
from meshgate.outage import DEFAULT_TIMEOUT, unavailable
from meshgate.sql.base import Params, Row, SqlSession


@lru_cache(maxsize=1024)
def _translate(sql: str) -> str:
    return re.sub(r"\?", "%s", sql.replace("%", "%%"))


WHAT = "SQL store (PostgreSQL)"
CLOSE_WAIT = 2.0


class _Session:
    def __init__(self, conn: psycopg.AsyncConnection[Row], timeout: float):
        self._conn = conn
        self._timeout = timeout

    async def execute(self, sql: str, params: Params = ()) -> int:
        async with self._bounded():
            cursor = await self._conn.execute(_translate(sql), tuple(params))
            return cursor.rowcount

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        async with self._bounded():
            cursor = await self._conn.execute(_translate(sql), tuple(params))
            return await cursor.fetchone()

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._bounded():
            cursor = await self._conn.execute(_translate(sql), tuple(params))
            return await cursor.fetchall()

    @asynccontextmanager
    async def _bounded(self) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(self._timeout):
                yield
        except psycopg.errors.UniqueViolation as exc:
            # Typed, so two nodes racing on the same insert can tell "the other one won".
            raise Conflict("a record with the same key already exists") from exc
        except (psycopg.OperationalError, TimeoutError) as exc:
            # The connection is left mid-statement: the pool discards it when it comes back.
            raise unavailable(WHAT, exc) from exc


class PostgresStore:
    dialect = "postgresql"

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        timeout: float = DEFAULT_TIMEOUT,
    ):
        self.url = url.replace("postgres://", "postgresql://", 1)
        self.timeout = timeout
        kwargs: dict[str, object] = {"row_factory": dict_row, "autocommit": True}
        if "connect_timeout" not in self.url:
            kwargs["connect_timeout"] = max(2, math.ceil(timeout))  # libpq's floor is 2 s
        self._pool = AsyncConnectionPool(
            self.url,
            min_size=min_size,
            max_size=max_size,
            open=False,
            kwargs=kwargs,
        )

    async def start(self) -> None:
        await self._pool.open(wait=False)
        try:
            await self.ping()
        except BaseException:
            await self._pool.close()
            raise

    async def close(self) -> None:
        await self._pool.close(timeout=CLOSE_WAIT)

    async def ping(self) -> None:
        await self.fetch_one("SELECT 1 AS ok")

    def render(self, ddl: str) -> str:
        return ddl.format(blob="BYTEA", autoinc="BIGSERIAL PRIMARY KEY")

    async def execute(self, sql: str, params: Params = ()) -> int:
        async with self._connection() as conn:
            return await _Session(conn, self.timeout).execute(sql, params)

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        async with self._connection() as conn:
            return await _Session(conn, self.timeout).fetch_one(sql, params)

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        async with self._connection() as conn:
            return await _Session(conn, self.timeout).fetch_all(sql, params)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[SqlSession]:
        async with self._connection() as conn, conn.transaction():
            yield _Session(conn, self.timeout)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Row]]:
        try:
            async with self._pool.connection(timeout=self.timeout) as conn:
                yield conn
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise unavailable(WHAT, exc) from exc
