"""Redis limiter: one Lua script checks and charges every bucket atomically, on the server's
clock, so any number of processes share one global limit.

Keys are ``mg:rl:<bucket key>``; callers put a ``{hash tag}`` in bucket keys that must be
checked together, so the script stays valid on Redis Cluster.
"""

from __future__ import annotations

from redis.exceptions import RedisError

from meshgate.limits.base import Bucket, Decision, evaluate, most_restrictive
from meshgate.outage import DEFAULT_TIMEOUT, redis_client, unavailable

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

# Returns {all_admitted, tat_1 - now, tat_2 - now, ...} with the TATs before this request.
CHECK = (
    _NOW
    + """
local admitted = 1
local rel = {}
local new_tat = {}
for i = 1, #KEYS do
  local limit = tonumber(ARGV[i * 3 - 2])
  local period = tonumber(ARGV[i * 3 - 1])
  local cost = tonumber(ARGV[i * 3])
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  if tat < now then tat = now end
  new_tat[i] = tat + cost * period / limit
  if now + 0.000001 < new_tat[i] - period then admitted = 0 end  -- forgive float rounding
  rel[i] = tostring(tat - now)
end
if admitted == 1 then
  for i = 1, #KEYS do
    local ttl = math.ceil((new_tat[i] - now) * 1000) + 1000
    redis.call('SET', KEYS[i], tostring(new_tat[i]), 'PX', ttl)
  end
end
table.insert(rel, 1, admitted)
return rel
"""
)

CHARGE = (
    _NOW
    + """
local limit = tonumber(ARGV[1])
local period = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
tat = tat + cost * period / limit
redis.call('SET', KEYS[1], tostring(tat), 'PX', math.ceil((tat - now) * 1000) + 1000)
return 1
"""
)


class RedisLimiter:
    def __init__(self, url: str, *, prefix: str = "mg:rl:", timeout: float = DEFAULT_TIMEOUT):
        self._redis = redis_client(url, timeout=timeout)
        self._prefix = prefix
        self._check = self._redis.register_script(CHECK)
        self._charge = self._redis.register_script(CHARGE)

    async def start(self) -> None:
        # Connections are made on first use: a Redis outage at start makes /readyz and the
        # requests that need a limit answer 503 until it returns, instead of a crash.
        pass

    async def close(self) -> None:
        await self._redis.aclose()

    async def ping(self) -> None:
        try:
            await self._redis.ping()
        except (RedisError, OSError) as exc:
            raise unavailable("rate limiter (Redis)", exc) from exc

    async def check(self, buckets: list[Bucket]) -> Decision:
        keys = [self._prefix + b.key for b in buckets]
        args = [v for b in buckets for v in (b.limit, b.period, b.cost)]
        try:
            reply = await self._check(keys=keys, args=args)
        except (RedisError, OSError) as exc:
            raise unavailable("rate limiter (Redis)", exc) from exc
        # GCRA is shift-invariant: judging the TAT relative to now at time 0 gives the
        # same verdict the script reached on the server's clock.
        decisions = [
            evaluate(float(rel), 0.0, b)[2] for rel, b in zip(reply[1:], buckets, strict=True)
        ]
        return most_restrictive(decisions)

    async def charge(self, bucket: Bucket) -> None:
        try:
            await self._charge(
                keys=[self._prefix + bucket.key], args=[bucket.limit, bucket.period, bucket.cost]
            )
        except (RedisError, OSError) as exc:
            raise unavailable("rate limiter (Redis)", exc) from exc
