"""What the inference path needs of the Context Mesh: read what a model may see, hand out
session handles, and append a chat's turns to its session."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from meshgate.context.model import Json

Turn = tuple[str, str, Json | None]


class ContextReader(Protocol):
    async def resolve(
        self,
        *,
        tenant: str,
        user_id: str | None,
        session_id: str | None,
        allow: Sequence[str],
    ) -> Json:
        """Exactly what ``allow`` lets a consumer see of this user and session."""
        ...

    def handle(self, tenant: str, session_id: str) -> str:
        """An opaque signed handle of the session, for outbound baggage."""
        ...

    async def append_interactions(
        self, *, tenant: str, session_id: str, turns: Sequence[Turn]
    ) -> None:
        """Append turns ``(role, content, metadata)`` to the session."""
        ...
