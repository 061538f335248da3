"""Feature flags of each tenant: stored in the SQL store, cached compiled, evaluated per user.

Every change is a ``meshgate.flag.changed`` event and an audit record, written in the change's
own transaction. Each node keeps its compiled flags in memory and follows the log for those
events, so a change made through any node reaches every node's cache within the time the log
takes to deliver it.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from meshgate.delivery.flags import Evaluation, Flag, FlagSpec
from meshgate.errors import BadRequest, NotFound
from meshgate.events.base import Filter
from meshgate.events.catalogue import FLAG_CHANGED, FlagAction, FlagChanged
from meshgate.events.envelope import Event
from meshgate.events.ports import EventPublisher
from meshgate.governance.ports import AuditRecorder
from meshgate.sql import Migration, SqlSession, SqlStore

log = logging.getLogger("meshgate.delivery")
MIGRATIONS = [
    Migration(
        "delivery.flags",
        1,
        """
        CREATE TABLE delivery_flags (
            tenant TEXT NOT NULL,
            flag_key TEXT NOT NULL,
            spec TEXT NOT NULL,
            version INTEGER NOT NULL,
            updated_by TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (tenant, flag_key)
        )
        """,
    )
]
Profile = tuple[dict[str, Any], dict[str, Any]]
"""A user's attributes and preferences."""
ProfileReader = Callable[[str, str], Awaitable[Profile | None]]
"""(tenant, user_id) -> the user's context, or None when the Context Mesh holds none."""


class ChangeFeed(Protocol):
    def tail(
        self, *, after: int = 0, where: Filter = ..., batch: int = 200
    ) -> AsyncIterator[Event]:
        """Every matching event after ``after``, then new ones as they are appended."""
        ...


class FlagService:
    def __init__(
        self,
        sql: SqlStore,
        *,
        events: EventPublisher,
        feed: ChangeFeed,
        latest: Callable[[], Awaitable[int]],
        audit: AuditRecorder,
        profiles: ProfileReader,
    ):
        self.sql = sql
        self.events = events
        self.feed = feed
        self.latest = latest
        self.audit = audit
        self.profiles = profiles
        self._flags: dict[str, dict[str, Flag]] = {}
        self._follower: asyncio.Task[None] | None = None

    async def start(self) -> None:
        # Never waits on the log: a node starts while its event log is down.
        self._follower = asyncio.get_running_loop().create_task(self._follow())

    async def close(self) -> None:
        if self._follower is not None:
            self._follower.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._follower

    async def _follow(self) -> None:
        after: int | None = None
        while True:
            try:
                if after is None:
                    after = await self.latest()
                async for event in self.feed.tail(
                    after=after, where=Filter(type=FLAG_CHANGED.name)
                ):
                    after = event.sequence or after
                    self._flags.pop(event.tenant, None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the log is down: drop every cache, retry shortly
                log.warning("following flag changes failed (%s); caches dropped", exc)
                self._flags.clear()
                await asyncio.sleep(1)

    # --- reads ---------------------------------------------------------------------------

    async def flags(self, tenant: str) -> dict[str, Flag]:
        cached = self._flags.get(tenant)
        if cached is None:
            rows = await self.sql.fetch_all(
                "SELECT flag_key, spec FROM delivery_flags WHERE tenant = ?", (tenant,)
            )
            cached = {
                r["flag_key"]: Flag(r["flag_key"], FlagSpec.model_validate_json(r["spec"]))
                for r in rows
            }
            self._flags[tenant] = cached
        return cached

    async def describe(self, tenant: str, key: str) -> dict[str, Any]:
        row = await self.sql.fetch_one(
            "SELECT * FROM delivery_flags WHERE tenant = ? AND flag_key = ?", (tenant, key)
        )
        if row is None:
            raise NotFound(f"no flag {key!r}", code="flag_not_found")
        return view(row)

    async def list(self, tenant: str) -> list[dict[str, Any]]:
        rows = await self.sql.fetch_all(
            "SELECT * FROM delivery_flags WHERE tenant = ? ORDER BY flag_key", (tenant,)
        )
        return [view(r) for r in rows]

    async def evaluate(
        self, tenant: str, user_id: str | None, keys: builtins.list[str]
    ) -> dict[str, Evaluation]:
        flags = await self.flags(tenant)
        missing = [k for k in keys if k not in flags]
        if missing:
            raise NotFound(f"no flag {missing[0]!r}", code="flag_not_found")
        context: dict[str, Any] = {"tenant": tenant, "user_id": user_id}
        if user_id is not None:
            profile = await self.profiles(tenant, user_id)
            if profile is not None:
                context["attributes"], context["preferences"] = profile
        return {k: flags[k].evaluate(context, user_id) for k in keys}

    async def choose_model(self, tenant: str, user_id: str | None, key: str) -> str:
        """The model a flag gives this user (``"model": "flag:<key>"`` in a chat call): the
        flag's value, which must be a string naming a model."""
        flag = (await self.flags(tenant)).get(key)
        if flag is None:
            raise NotFound(
                f"no flag {key!r} to choose the model", code="model_not_found", param="model"
            )
        found = await self.evaluate(tenant, user_id, [key])
        value = found[key].value
        if not isinstance(value, str) or not value:
            raise BadRequest(
                f"flag {key!r} gives {found[key].variant!r}, which is not a model name",
                param="model",
            )
        return value

    # --- changes -------------------------------------------------------------------------

    async def put(self, tenant: str, key: str, spec: FlagSpec, actor: str) -> dict[str, Any]:
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds")
        body = spec.model_dump_json(by_alias=True)
        async with self.sql.transaction() as tx:
            row = await tx.fetch_one(
                "SELECT version FROM delivery_flags WHERE tenant = ? AND flag_key = ?",
                (tenant, key),
            )
            version = 1 if row is None else int(row["version"]) + 1
            if row is None:
                await tx.execute(
                    "INSERT INTO delivery_flags VALUES (?, ?, ?, ?, ?, ?)",
                    (tenant, key, body, version, actor, stamp),
                )
            else:
                await tx.execute(
                    "UPDATE delivery_flags SET spec = ?, version = ?, updated_by = ?, "
                    "updated_at = ? WHERE tenant = ? AND flag_key = ?",
                    (body, version, actor, stamp, tenant, key),
                )
            action: FlagAction = "put" if version == 1 else "changed"
            await self._audit(tx, tenant, key, action, actor, version)
        await self._announce(tenant, key, action, actor, version)
        return await self.describe(tenant, key)

    async def delete(self, tenant: str, key: str, actor: str) -> None:
        async with self.sql.transaction() as tx:
            count = await tx.execute(
                "DELETE FROM delivery_flags WHERE tenant = ? AND flag_key = ?", (tenant, key)
            )
            if not count:
                raise NotFound(f"no flag {key!r}", code="flag_not_found")
            await self._audit(tx, tenant, key, "deleted", actor, None)
        await self._announce(tenant, key, "deleted", actor, None)

    async def _audit(
        self,
        tx: SqlSession,
        tenant: str,
        key: str,
        action: FlagAction,
        actor: str,
        version: int | None,
    ) -> None:
        """Last in the change's transaction: a flag never changes unaudited."""
        await self.audit.record(
            within=tx,
            actor=actor,
            tenant=tenant,
            action=f"flag.{action}",
            resource=f"flags/{key}",
            details={"version": version},
        )

    async def _announce(
        self, tenant: str, key: str, action: FlagAction, actor: str, version: int | None
    ) -> None:
        self._flags.pop(tenant, None)
        data = FLAG_CHANGED.data(FlagChanged(key=key, action=action, version=version, actor=actor))
        await self.events.publish(
            FLAG_CHANGED.name, tenant=tenant, data=data, subject=f"flags/{key}"
        )


def view(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "key": row["flag_key"],
        **orjson.loads(row["spec"]),
        "version": row["version"],
        "updated_by": row["updated_by"],
        "updated_at": row["updated_at"],
    }
