"""In-process context store: for tests and single-process development. Nothing survives a
restart."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from meshgate.context.model import (
    Erased,
    Interaction,
    Json,
    Session,
    SessionView,
    UserExport,
    UserProfile,
)


class MemoryContextStore:
    def __init__(self, *, clock: Callable[[], float] | None = None):
        self._clock = clock or time.time
        self._users: dict[tuple[str, str], UserProfile] = {}
        self._sessions: dict[tuple[str, str], Session] = {}
        self._interactions: dict[tuple[str, str], list[Interaction]] = {}
        self._policies: dict[tuple[str, str], list[str]] = {}

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def ping(self) -> None:
        pass

    async def get_user(self, tenant: str, user_id: str) -> UserProfile | None:
        return self._users.get((tenant, user_id))

    async def put_user(self, tenant: str, profile: UserProfile) -> bool:
        current = self._users.get((tenant, profile.user_id))
        if (current.version if current else 0) != profile.version - 1:
            return False
        self._users[(tenant, profile.user_id)] = profile
        return True

    async def get_context(
        self, tenant: str, user_id: str | None, session_id: str | None, *, last: int
    ) -> tuple[UserProfile | None, SessionView | None]:
        user = await self.get_user(tenant, user_id) if user_id else None
        view = await self.get_session(tenant, session_id, last=last) if session_id else None
        return user, view

    async def create_session(self, tenant: str, session: Session) -> None:
        self._sessions[(tenant, session.session_id)] = session
        self._interactions[(tenant, session.session_id)] = []

    def _live(self, tenant: str, session_id: str) -> Session | None:
        session = self._sessions.get((tenant, session_id))
        if session is None or session.expires_at <= self._clock():
            return None
        return session

    async def get_session(
        self, tenant: str, session_id: str, *, last: int = 0
    ) -> SessionView | None:
        session = self._live(tenant, session_id)
        if session is None:
            return None
        items = self._interactions[(tenant, session_id)]
        return SessionView(session, tuple(items[-last:]) if last > 0 else ())

    async def put_session_state(self, tenant: str, session_id: str, state: Json) -> bool:
        session = self._live(tenant, session_id)
        if session is None:
            return False
        self._sessions[(tenant, session_id)] = replace(session, state=state)
        return True

    async def append_interactions(
        self, tenant: str, session_id: str, items: list[Interaction], *, keep: int
    ) -> bool:
        if self._live(tenant, session_id) is None:
            return False
        history = self._interactions[(tenant, session_id)]
        history.extend(items)
        del history[:-keep]
        return True

    def _sessions_of(self, tenant: str, user_id: str) -> list[Session]:
        return [s for (t, _), s in self._sessions.items() if t == tenant and s.user_id == user_id]

    async def export_user(self, tenant: str, user_id: str) -> UserExport:
        export = UserExport(self._users.get((tenant, user_id)))
        for s in self._sessions_of(tenant, user_id):
            if self._live(tenant, s.session_id) is not None:
                items = tuple(self._interactions[(tenant, s.session_id)])
                export.sessions.append(SessionView(s, items))
        return export

    async def erase_user(self, tenant: str, user_id: str) -> Erased:
        records = 1 if self._users.pop((tenant, user_id), None) else 0
        ids = []
        for s in self._sessions_of(tenant, user_id):
            del self._sessions[(tenant, s.session_id)]
            records += 1 + len(self._interactions.pop((tenant, s.session_id), []))
            ids.append(s.session_id)
        return Erased(records, tuple(ids))

    async def purge_expired(self) -> int:
        now = self._clock()
        gone = [k for k, s in self._sessions.items() if s.expires_at <= now]
        for key in gone:
            del self._sessions[key]
            self._interactions.pop(key, None)
        return len(gone)

    async def get_policy(self, tenant: str, consumer: str) -> list[str] | None:
        allow = self._policies.get((tenant, consumer))
        return list(allow) if allow is not None else None

    async def put_policy(self, tenant: str, consumer: str, allow: list[str]) -> None:
        self._policies[(tenant, consumer)] = list(allow)

    async def delete_policy(self, tenant: str, consumer: str) -> bool:
        return self._policies.pop((tenant, consumer), None) is not None

    async def list_policies(self, tenant: str) -> dict[str, list[str]]:
        return {c: list(a) for (t, c), a in sorted(self._policies.items()) if t == tenant}
