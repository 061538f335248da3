"""The ``ContextStore`` port: every backend (memory, SQLite, Redis) implements exactly this.

The tenant is the first argument of every call and part of every storage key, so one tenant's
data cannot be reached through another's (a hard partition, not a filter).
"""

from __future__ import annotations

from typing import Protocol

from meshgate.context.model import (
    Erased,
    Interaction,
    Json,
    Session,
    SessionView,
    UserExport,
    UserProfile,
)


class ContextStore(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None:
        """Raise ``BackendUnavailable`` when the backend does not answer."""
        ...

    async def get_user(self, tenant: str, user_id: str) -> UserProfile | None: ...

    async def put_user(self, tenant: str, profile: UserProfile) -> bool:
        """Write ``profile`` if the stored version is ``profile.version - 1`` (0: absent).

        Returns False, writing nothing, when another writer got there first.
        """
        ...

    async def get_context(
        self, tenant: str, user_id: str | None, session_id: str | None, *, last: int
    ) -> tuple[UserProfile | None, SessionView | None]:
        """The hot-path read: profile and session view together, in one round trip."""
        ...

    async def create_session(self, tenant: str, session: Session) -> None: ...

    async def get_session(
        self, tenant: str, session_id: str, *, last: int = 0
    ) -> SessionView | None:
        """The session and its ``last`` newest interactions (oldest first); None once expired."""
        ...

    async def put_session_state(self, tenant: str, session_id: str, state: Json) -> bool:
        """Replace a live session's state; False, writing nothing, if the session is gone."""
        ...

    async def append_interactions(
        self, tenant: str, session_id: str, items: list[Interaction], *, keep: int
    ) -> bool:
        """Append to a live session, keeping only its ``keep`` newest; False if it is gone."""
        ...

    async def export_user(self, tenant: str, user_id: str) -> UserExport:
        """Everything held on the user: profile and live sessions with their interactions."""
        ...

    async def erase_user(self, tenant: str, user_id: str) -> Erased:
        """Remove the profile, every session and every interaction of the user."""
        ...

    async def purge_expired(self) -> int:
        """Delete sessions past their expiry (a no-op where the backend expires them)."""
        ...

    async def get_policy(self, tenant: str, consumer: str) -> list[str] | None: ...

    async def put_policy(self, tenant: str, consumer: str, allow: list[str]) -> None: ...

    async def delete_policy(self, tenant: str, consumer: str) -> bool: ...

    async def list_policies(self, tenant: str) -> dict[str, list[str]]: ...
