"""PostgreSQL backend of the SQL store (scale-out), on a psycopg async pool.

Every statement, and every wait for a pooled connection, is bounded by ``timeout`` (the
``backend_timeout_seconds`` setting): a PostgreSQL that is down or frozen costs a request a
503 within that time. The pool reconnects by itself once the server is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
from collections.abc import AsyncIterator, Coroutine, Iterator
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any, TypeVar

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from meshgate.errors import Conflict
from meshgate.outage import DEFAULT_TIMEOUT, unavailable
from meshgate.sql.base import Params, Row, SqlSession


@lru_cache(maxsize=1024)
def _translate(sql: str) -> str:
    return re.sub(r"\?", "%s", sql.replace("%", "%%"))


T = TypeVar("T")
WHAT = "SQL store (PostgreSQL)"
CLOSE_WAIT = 2.0
RECONNECT_GIVE_UP = 2.0


class _Session:
    def __init__(self, conn: psycopg.AsyncConnection[Row], timeout: float):
        self._conn = conn
        self._timeout = timeout

    async def execute(self, sql: str, params: Params = ()) -> int:
        async def run() -> int:
            cursor = await self._conn.execute(_translate(sql), tuple(params))
            return cursor.rowcount

        return await self._bounded(run())

    async def fetch_one(self, sql: str, params: Params = ()) -> Row | None:
        async def run() -> Row | None:
            cursor = await self._conn.execute(_translate(sql), tuple(params))
            return await cursor.fetchone()

        return await self._bounded(run())

    async def fetch_all(self, sql: str, params: Params = ()) -> list[Row]:
        async def run() -> list[Row]:
            cursor = await self._conn.execute(_translate(sql), tuple(params))
            return await cursor.fetchall()

        return await self._bounded(run())

    async def _bounded(self, statement: Coroutine[Any, Any, T]) -> T:
        task = asyncio.ensure_future(statement)
        try:
            return await asyncio.wait_for(asyncio.shield(task), self._timeout)
        except TimeoutError as exc:
            # Cancelling psycopg mid-statement waits up to 10 s for the server to confirm,
            # which a frozen server never does. The connection is closed instead: the
            # statement fails there, and the pool discards the connection.
            task.add_done_callback(_forget)
            await self._conn.close()
            raise unavailable(WHAT, "no answer within the timeout") from exc
        except asyncio.CancelledError:
            # The caller was cancelled (a shutdown): the same, or the statement left running
            # would be cancelled at the loop's end, and psycopg would wait on the server then.
            task.add_done_callback(_forget)
            await self._conn.close()
            raise
        except psycopg.errors.UniqueViolation as exc:
            # Typed, so two nodes racing on the same insert can tell "the other one won".
            raise Conflict("a record with the same key already exists") from exc
        except psycopg.OperationalError as exc:
            raise unavailable(WHAT, exc) from exc


def _forget(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: the statement of a closed connection failed, as meant


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
        self._size = (min_size, max_size)
        self._kwargs = kwargs
        self._pool = self._new_pool()
        self._opened = False

    def _new_pool(self) -> AsyncConnectionPool[psycopg.AsyncConnection[Row]]:
        return AsyncConnectionPool(
            self.url,
            # Rows come back as dicts (row_factory below); the class says so to the type checker.
            connection_class=psycopg.AsyncConnection[Row],
            min_size=self._size[0],
            max_size=self._size[1],
            open=False,
            kwargs=self._kwargs,
            # Give up a failing reconnection early: the next request starts a fresh attempt,
            # instead of waiting out a backoff grown while the server was away.
            reconnect_timeout=RECONNECT_GIVE_UP,
        )

    @contextlib.contextmanager
    def patient(self, seconds: float) -> Iterator[None]:
        before, self.timeout = self.timeout, max(self.timeout, seconds)
        try:
            yield
        finally:
            self.timeout = before

    def hurry(self, seconds: float) -> None:
        self.timeout = min(self.timeout, seconds)

    async def start(self) -> None:
        if self._opened:
            # A closed pool cannot be opened again: a start after a failed one (the server was
            # down, and the node retries its start-up) gets a new pool.
            self._pool = self._new_pool()
        self._opened = True
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
        # BEGIN and COMMIT are statements like the others, so they are bounded too: a frozen
        # server must not hold a request at the start or the end of a transaction.
        async with self._connection() as conn:
            session = _Session(conn, self.timeout)
            await session.execute("BEGIN")
            try:
                yield session
            except BaseException:
                with contextlib.suppress(Exception):  # a broken connection is discarded
                    await session.execute("ROLLBACK")
                raise
            await session.execute("COMMIT")

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Row]]:
        try:
            async with self._pool.connection(timeout=self.timeout) as conn:
                yield conn
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise unavailable(WHAT, exc) from exc
