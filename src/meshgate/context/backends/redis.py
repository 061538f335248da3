"""Redis context store: the scale-out backend, shared by every process.

Keys, all under ``<namespace>:ctx:<tenant>:`` so the tenant partitions the key space:

- ``u:<user>``   hash {v, t, a, p}: the whole profile, read with one HMGET
- ``us:<user>``  set of the user's session ids (for export and erasure)
- ``s:<sid>``    hash: the session; expires at the session's end (Redis TTL)
- ``i:<sid>``    list of interactions (JSON), oldest first; same expiry as its session
- ``p``          hash consumer -> policy (JSON)

A hot-path read (profile, session, newest interactions) is one pipelined round trip.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
from redis.exceptions import RedisError
from redis.typing import EncodableT

from meshgate.context.model import (
    Erased,
    Interaction,
    Json,
    Session,
    SessionView,
    UserExport,
    UserProfile,
)
from meshgate.outage import DEFAULT_TIMEOUT, redis_client, unavailable

# Compare-and-set of the profile: written only if the stored version is the expected one.
PUT_USER = """
local v = redis.call('HGET', KEYS[1], 'v')
if (v or '0') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'v', ARGV[2], 't', ARGV[3], 'a', ARGV[4], 'p', ARGV[5])
return 1
"""

# Append to a live session, trim to the newest ARGV[1], and give the list the session's expiry.
APPEND = """
local deadline = redis.call('PEXPIRETIME', KEYS[1])
if deadline < 0 then return 0 end
for i = 2, #ARGV do redis.call('RPUSH', KEYS[2], ARGV[i]) end
redis.call('LTRIM', KEYS[2], -tonumber(ARGV[1]), -1)
redis.call('PEXPIREAT', KEYS[2], deadline)
return 1
"""

# Only a live session takes a new state: the key must still exist (not expired, not erased).
PUT_STATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[1])
return 1
"""

WHAT = "context store (Redis)"
SESSION_FIELDS = ("user", "channel", "ttl", "state", "created", "expires")


def _text(value: bytes | str) -> str:
    """A reply item as text (this client leaves replies as bytes; redis-py types them either)."""
    return value.decode() if isinstance(value, bytes) else value


def _user(user_id: str, fields: list[Any]) -> UserProfile | None:
    v, t, a, p = fields
    if v is None:
        return None
    return UserProfile(user_id, orjson.loads(a), orjson.loads(p), int(v), float(t))


def _session(session_id: str, fields: list[Any]) -> Session | None:
    user, channel, ttl, state, created, expires = fields
    if user is None:
        return None
    return Session(
        session_id,
        user.decode(),
        channel.decode(),
        int(ttl),
        orjson.loads(state),
        float(created),
        float(expires),
    )


def _items(raw: list[bytes]) -> tuple[Interaction, ...]:
    return tuple(Interaction.from_record(orjson.loads(r)) for r in raw)


class RedisContextStore:
    def __init__(
        self,
        url: str,
        *,
        prefix: str,
        clock: Callable[[], float] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ):
        # The clock is only for the contract suite's sake: Redis expires sessions itself.
        self._clock = clock or time.time
        self._redis = redis_client(url, timeout=timeout)
        self._prefix = prefix
        self._put_user = self._redis.register_script(PUT_USER)
        self._append = self._redis.register_script(APPEND)
        self._put_state = self._redis.register_script(PUT_STATE)

    def _k(self, tenant: str, kind: str, ident: str = "") -> str:
        return f"{self._prefix}{tenant}:{kind}{ident}"

    async def start(self) -> None:
        # Connections are made on first use: a Redis that is down at start makes /readyz and
        # the requests that need context answer 503 until it returns, never a failed start.
        pass

    async def close(self) -> None:
        await self._redis.aclose()

    async def ping(self) -> None:
        try:
            await self._redis.ping()
        except (RedisError, OSError) as exc:
            raise unavailable(WHAT, exc) from exc

    async def get_user(self, tenant: str, user_id: str) -> UserProfile | None:
        try:
            fields = await self._redis.hmget(self._k(tenant, "u:", user_id), "v", "t", "a", "p")
        except (RedisError, OSError) as exc:
            raise unavailable(WHAT, exc) from exc
        return _user(user_id, fields)

    async def put_user(self, tenant: str, p: UserProfile) -> bool:
        args: list[EncodableT] = [p.version - 1, p.version, repr(p.updated_at)]
        args += [orjson.dumps(p.attributes), orjson.dumps(p.preferences)]
        try:
            return bool(await self._put_user(keys=[self._k(tenant, "u:", p.user_id)], args=args))
        except (RedisError, OSError) as exc:
            raise unavailable(WHAT, exc) from exc

    async def get_context(
        self, tenant: str, user_id: str | None, session_id: str | None, *, last: int
    ) -> tuple[UserProfile | None, SessionView | None]:
        pipe = self._redis.pipeline(transaction=False)
        if user_id:
            pipe.hmget(self._k(tenant, "u:", user_id), "v", "t", "a", "p")
        if session_id:
            pipe.hmget(self._k(tenant, "s:", session_id), *SESSION_FIELDS)
            if last > 0:
                pipe.lrange(self._k(tenant, "i:", session_id), -last, -1)
        try:
            replies = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise unavailable(WHAT, exc) from exc
        user = _user(user_id, replies.pop(0)) if user_id else None
        view = None
        if session_id:
            session = _session(session_id, replies.pop(0))
            items = _items(replies.pop(0)) if last > 0 else ()
            view = SessionView(session, items) if session else None
        return user, view

    async def create_session(self, tenant: str, s: Session) -> None:
        key = self._k(tenant, "s:", s.session_id)
        pipe = self._redis.pipeline(transaction=True)
        pipe.hset(
            key,
            mapping={
                "user": s.user_id,
                "channel": s.channel,
                "ttl": s.ttl_seconds,
                "state": orjson.dumps(s.state),
                "created": repr(s.created_at),
                "expires": repr(s.expires_at),
            },
        )
        pipe.pexpireat(key, int(s.expires_at * 1000))
        pipe.sadd(self._k(tenant, "us:", s.user_id), s.session_id)
        try:
            await pipe.execute()
        except (RedisError, OSError) as exc:
            raise unavailable(WHAT, exc) from exc

    async def get_session(
        self, tenant: str, session_id: str, *, last: int = 0
    ) -> SessionView | None:
        return (await self.get_context(tenant, None, session_id, last=last))[1]

    async def put_session_state(self, tenant: str, session_id: str, state: Json) -> bool:
        key = self._k(tenant, "s:", session_id)
        try:
            return bool(await self._put_state(keys=[key], args=[orjson.dumps(state)]))
        except (RedisError, OSError) as exc:
            raise unavailable(WHAT, exc) from exc

    async def append_interactions(
        self, tenant: str, session_id: str, items: list[Interaction], *, keep: int
    ) -> bool:
        keys = [self._k(tenant, "s:", session_id), self._k(tenant, "i:", session_id)]
        args: list[Any] = [keep, *(orjson.dumps(i.to_record()) for i in items)]
        try:
            return bool(await self._append(keys=keys, args=args))
        except (RedisError, OSError) as exc:
            raise unavailable(WHAT, exc) from exc

    async def _session_ids(self, tenant: str, user_id: str) -> list[str]:
        members = await self._redis.smembers(self._k(tenant, "us:", user_id))
        return sorted(_text(m) for m in members)

    async def export_user(self, tenant: str, user_id: str) -> UserExport:
        try:
            export = UserExport(await self.get_user(tenant, user_id))
            expired = []
            for sid in await self._session_ids(tenant, user_id):
                view = await self.get_session(tenant, sid, last=1 << 30)
                if view is not None:
                    export.sessions.append(view)
                else:
                    expired.append(sid)
            if expired:  # Redis dropped them at their TTL; the index forgets them here
                await self._redis.srem(self._k(tenant, "us:", user_id), *expired)
        except (RedisError, OSError) as exc:
            raise unavailable(WHAT, exc) from exc
        export.sessions.sort(key=lambda v: v.session.created_at)
        return export

    async def erase_user(self, tenant: str, user_id: str) -> Erased:
        try:
            ids = await self._session_ids(tenant, user_id)
            pipe = self._redis.pipeline(transaction=True)
            for sid in ids:
                pipe.llen(self._k(tenant, "i:", sid))
            pipe.delete(self._k(tenant, "u:", user_id))
            for sid in ids:
                pipe.delete(self._k(tenant, "s:", sid))
            pipe.delete(self._k(tenant, "us:", user_id), *(self._k(tenant, "i:", s) for s in ids))
            replies = await pipe.execute()
        except (RedisError, OSError) as exc:
            raise unavailable(WHAT, exc) from exc
        # Interactions counted by LLEN; then the profile and each session deleted.
        records = sum(replies[: 2 * len(ids) + 1])
        return Erased(records, tuple(ids))

    async def purge_expired(self) -> int:
        return 0

    async def get_policy(self, tenant: str, consumer: str) -> list[str] | None:
        try:
            raw = await self._redis.hget(self._k(tenant, "p"), consumer)
        except (RedisError, OSError) as exc:
            raise unavailable(WHAT, exc) from exc
        return orjson.loads(raw) if raw is not None else None

    async def put_policy(self, tenant: str, consumer: str, allow: list[str]) -> None:
        try:
            await self._redis.hset(self._k(tenant, "p"), consumer, orjson.dumps(allow))
        except (RedisError, OSError) as exc:
            raise unavailable(WHAT, exc) from exc

    async def delete_policy(self, tenant: str, consumer: str) -> bool:
        try:
            return bool(await self._redis.hdel(self._k(tenant, "p"), consumer))
        except (RedisError, OSError) as exc:
            raise unavailable(WHAT, exc) from exc

    async def list_policies(self, tenant: str) -> dict[str, list[str]]:
        try:
            raw = await self._redis.hgetall(self._k(tenant, "p"))
        except (RedisError, OSError) as exc:
            raise unavailable(WHAT, exc) from exc
        return {_text(k): orjson.loads(v) for k, v in sorted(raw.items())}
