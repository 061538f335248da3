"""Running budget totals: reserve before the upstream call, settle once the cost is known.

One number per budget and period holds what was spent plus what is reserved by calls in
flight. A call is admitted while every hard budget it falls under is below its amount, and
reserves its estimated cost on all of them in the same atomic step; settling replaces the
estimate with the real cost. With estimates at or above the real cost, concurrent calls from
any number of processes stop at the budget and overshoot it by at most one call.

In memory on the embedded default (one process, one event loop: each step is atomic), in
Redis on scale-out (each step one Lua script).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from redis.exceptions import RedisError
from redis.typing import EncodableT

from meshgate.outage import redis_client, unavailable


@dataclass(frozen=True, slots=True)
class Line:
    """One budget as a counter: its key (budget and period), amount and soft level."""

    key: str
    amount: float
    soft: float
    hard: bool
    ttl_seconds: int


class Counters(Protocol):
    async def reserve(self, lines: list[Line], estimate: float) -> Line | None:
        """Reserve ``estimate`` on every line; the refusing hard line, or None when admitted."""
        ...

    async def settle(self, lines: list[Line], delta: float) -> list[Line]:
        """Add ``delta`` (real cost minus estimate); the lines whose soft level this crossed
        first in their period."""
        ...

    async def used(self, key: str) -> float: ...

    async def forget(self, prefix: str) -> int:
        """Delete the counters of every period of one budget, ``prefix`` being its key up to
        the period's label (an erased user's)."""
        ...

    async def close(self) -> None: ...


class MemoryCounters:
    def __init__(self) -> None:
        self._used: dict[str, float] = {}
        self._warned: set[str] = set()

    async def reserve(self, lines: list[Line], estimate: float) -> Line | None:
        for line in lines:
            if line.hard and self._used.get(line.key, 0.0) >= line.amount:
                return line
        for line in lines:
            self._used[line.key] = self._used.get(line.key, 0.0) + estimate
        return None

    async def settle(self, lines: list[Line], delta: float) -> list[Line]:
        crossed = []
        for line in lines:
            used = self._used[line.key] = self._used.get(line.key, 0.0) + delta
            if used >= line.soft and line.key not in self._warned:
                self._warned.add(line.key)
                crossed.append(line)
        return crossed

    async def used(self, key: str) -> float:
        return self._used.get(key, 0.0)

    async def forget(self, prefix: str) -> int:
        keys = [k for k in self._used if of_budget(k, prefix)]
        for key in keys:
            del self._used[key]
        self._warned = {k for k in self._warned if not of_budget(k, prefix)}
        return len(keys)

    async def close(self) -> None:
        pass


# KEYS: counters; ARGV: estimate, then (amount, hard) per key. Returns 0, or the 1-based
# index of the refusing key.
RESERVE = """
for i = 1, #KEYS do
  if ARGV[i * 2 + 1] == '1' then
    local used = tonumber(redis.call('GET', KEYS[i]) or '0')
    if used >= tonumber(ARGV[i * 2]) then return i end
  end
end
for i = 1, #KEYS do
  redis.call('INCRBYFLOAT', KEYS[i], ARGV[1])
  if redis.call('TTL', KEYS[i]) < 0 then redis.call('EXPIRE', KEYS[i], ARGV[#ARGV]) end
end
return 0
"""

# KEYS: counters; ARGV: delta, then (soft level) per key, then the TTL. Returns the 1-based
# indexes of the keys whose soft level this settlement crossed first in the period.
SETTLE = """
local crossed = {}
for i = 1, #KEYS do
  local used = tonumber(redis.call('INCRBYFLOAT', KEYS[i], ARGV[1]))
  if redis.call('TTL', KEYS[i]) < 0 then redis.call('EXPIRE', KEYS[i], ARGV[#ARGV]) end
  if used >= tonumber(ARGV[i + 1]) then
    if redis.call('SET', KEYS[i] .. ':soft', '1', 'NX', 'EX', ARGV[#ARGV]) then
      table.insert(crossed, i)
    end
  end
end
return crossed
"""


class RedisCounters:
    def __init__(self, url: str, *, prefix: str):
        self._redis = redis_client(url)
        self._prefix = prefix
        self._reserve = self._redis.register_script(RESERVE)
        self._settle = self._redis.register_script(SETTLE)

    def _keys(self, lines: list[Line]) -> list[str]:
        return [self._prefix + line.key for line in lines]

    async def reserve(self, lines: list[Line], estimate: float) -> Line | None:
        args: list[EncodableT] = [repr(estimate)]
        for line in lines:
            args += [repr(line.amount), "1" if line.hard else "0"]
        args.append(max(line.ttl_seconds for line in lines))
        try:
            refused = int(await self._reserve(keys=self._keys(lines), args=args))
        except (RedisError, OSError) as exc:
            raise unavailable("budgets (Redis)", exc) from exc
        return lines[refused - 1] if refused else None

    async def settle(self, lines: list[Line], delta: float) -> list[Line]:
        args: list[EncodableT] = [repr(delta), *(repr(line.soft) for line in lines)]
        args.append(max(line.ttl_seconds for line in lines))
        try:
            crossed = await self._settle(keys=self._keys(lines), args=args)
        except (RedisError, OSError) as exc:
            raise unavailable("budgets (Redis)", exc) from exc
        return [lines[int(i) - 1] for i in crossed]

    async def used(self, key: str) -> float:
        try:
            value = await self._redis.get(self._prefix + key)
        except (RedisError, OSError) as exc:
            raise unavailable("budgets (Redis)", exc) from exc
        return float(value or 0)

    async def forget(self, prefix: str) -> int:
        pattern = glob_escape(self._prefix + prefix) + "*"
        try:
            found = self._redis.scan_iter(match=pattern, count=1000)
            start = len(self._prefix)
            keys = [k async for k in found if of_budget(k.decode()[start:], prefix)]
            if keys:
                await self._redis.delete(*keys)
        except (RedisError, OSError) as exc:
            raise unavailable("budgets (Redis)", exc) from exc
        return len(keys)

    async def close(self) -> None:
        await self._redis.aclose()


def of_budget(key: str, prefix: str) -> bool:
    """Whether ``key`` is a period's counter (or its soft-level mark) of budget ``prefix``:
    not one of a user whose id merely starts the same."""
    return key.startswith(prefix) and PERIOD.fullmatch(key[len(prefix) :]) is not None


PERIOD = re.compile(r"([A-Z]{3}:)?\d{4}-\d{2}(-\d{2})?(:soft)?")


def glob_escape(text: str) -> str:
    """``text`` matched literally by a Redis SCAN pattern."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def open_counters(url: str, *, namespace: str) -> Counters:
    if url.startswith(("redis://", "rediss://")):
        return RedisCounters(url, prefix=f"{namespace}:budget:")
    return MemoryCounters()
