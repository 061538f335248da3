"""Redis Streams event log (scale-out).

One Lua script per append batch does, atomically: de-duplicate on (tenant, source, id), take
the next sequences from a counter and ``XADD`` each record under the explicit entry id
``0-<sequence>``, so stream order, sequence order and append order are one. Durability is the
Redis server's: an append is acknowledged once Redis has it, and survives a Redis restart only
as far as its ``appendonly``/``appendfsync`` settings go.

All tenants share one stream and filters are applied here, so a filtered read scans from
``after`` onward; live tails stay cheap (they start at the end), a first page for a rare type in
a long log does not. NATS filters on the server; SQLite has indexes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from meshgate.events.base import EVERYTHING, Filter
from meshgate.events.envelope import Record
from meshgate.outage import DEFAULT_TIMEOUT, redis_client, unavailable

# KEYS: stream, counter, dedup hash. ARGV: dedup key, body, ... per record.
APPEND = """
local out = {}
for i = 1, #ARGV, 2 do
  local seq = redis.call('HGET', KEYS[3], ARGV[i])
  if not seq then
    seq = redis.call('INCR', KEYS[2])
    redis.call('XADD', KEYS[1], '0-' .. seq, 'b', ARGV[i + 1])
    redis.call('HSET', KEYS[3], ARGV[i], seq)
  end
  out[#out + 1] = tonumber(seq)
end
return out
"""
# KEYS: offsets hash. ARGV: group, sequence, forward-only flag.
SET_OFFSET = """
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local wanted = tonumber(ARGV[2])
if ARGV[3] == '1' and current >= wanted then return current end
redis.call('HSET', KEYS[1], ARGV[1], wanted)
return wanted
"""
READ_CHUNK = 512
WHAT = "event log (Redis)"


class RedisEventLog:
    name = "redis"

    def __init__(
        self,
        url: str,
        *,
        namespace: str,
        poll_interval: float = 0.2,
        timeout: float = DEFAULT_TIMEOUT,
    ):
        self.url = url
        self.stream = f"{namespace}:events"
        self.counter = f"{namespace}:events:seq"
        self.dedup = f"{namespace}:events:dedup"
        self.offsets = f"{namespace}:events:offsets"
        self.poll_interval = poll_interval
        self.timeout = timeout
        self._redis: aioredis.Redis | None = None

    async def start(self) -> None:
        # Connections are made on first use, so a Redis that is down at start is a 503 on
        # what needs the log (and on /readyz) until it returns, never a failed start.
        self._redis = redis_client(self.url, timeout=self.timeout, max_connections=64)
        self._append = self._redis.register_script(APPEND)
        self._set_offset = self._redis.register_script(SET_OFFSET)

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    async def ping(self) -> None:
        await self._call(self._client.ping())

    @property
    def _client(self) -> aioredis.Redis:
        if self._redis is None:
            raise unavailable(WHAT, "not started")
        return self._redis

    async def _call(self, awaitable: Any) -> Any:
        try:
            return await awaitable
        except (RedisError, OSError) as exc:
            raise unavailable(WHAT, exc) from exc

    # --- writes -----------------------------------------------------------------------------

    async def append(self, records: Sequence[Record]) -> list[Record]:
        if not records:
            return []
        args: list[Any] = []
        for record in records:
            args += [record.dedup_key, record.dumps()]
        sequences = await self._call(
            self._append(keys=[self.stream, self.counter, self.dedup], args=args)
        )
        return [r.with_sequence(int(s)) for r, s in zip(records, sequences, strict=True)]

    async def commit(self, group: str, sequence: int) -> None:
        await self._call(self._set_offset(keys=[self.offsets], args=[group, sequence, 1]))

    async def seek(self, group: str, sequence: int) -> None:
        await self._call(self._set_offset(keys=[self.offsets], args=[group, sequence, 0]))

    # --- reads ------------------------------------------------------------------------------

    async def committed(self, group: str) -> int:
        value = await self._call(self._client.hget(self.offsets, group))
        return int(value) if value else 0

    async def last_sequence(self) -> int:
        value = await self._call(self._client.get(self.counter))
        return int(value) if value else 0

    async def read(
        self, after: int = 0, limit: int = 100, where: Filter = EVERYTHING
    ) -> list[Record]:
        out: list[Record] = []
        cursor = after
        while len(out) < limit:
            entries = await self._call(
                self._client.xrange(self.stream, min=f"(0-{cursor}", count=READ_CHUNK)
            )
            for entry_id, fields in entries:
                record = Record.loads(fields[b"b"], int(entry_id.split(b"-")[1]))
                if where.matches(record):
                    out.append(record)
                    if len(out) == limit:
                        break
            if len(entries) < READ_CHUNK:
                break
            cursor = int(entries[-1][0].split(b"-")[1])
        return out

    async def wait(self, after: int, within: float) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            task = asyncio.current_task()
            if task is not None and task.cancelling():  # see service.raise_if_cancelled
                raise asyncio.CancelledError
            if await self.last_sequence() > after:
                return
            await asyncio.sleep(min(self.poll_interval, max(0.0, deadline - time.monotonic())))
