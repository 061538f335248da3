"""What the inference path needs of the Context Mesh: read what a model may see, hand out
session handles, and append a chat's turns to its session. And what the Context Mesh needs of
the registry: the context policy each model was registered with; and of the domains that hold
something of a user: to forget it when the user is erased."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from meshgate.context.model import Json

Turn = tuple[str, str, Json | None]
MODEL_CONSUMER = "model:"
"""A model is the context consumer ``model:<name>``."""


def model_consumer(name: str) -> str:
    return MODEL_CONSUMER + name


class ContextReader(Protocol):
    async def resolve_for_consumer(
        self,
        *,
        tenant: str,
        consumer: str,
        registered: Sequence[str] | None,
        user_id: str | None,
        session_id: str | None,
    ) -> Json:
        """What ``consumer`` may see of this user and session, by the one policy book:
        ``registered`` is the policy the consumer was registered with (a model's
        ``context_policy``), which an API-set or configured policy replaces."""
        ...

    def handle(self, tenant: str, session_id: str) -> str:
        """An opaque signed handle of the session, for outbound baggage."""
        ...

    async def append_interactions(
        self, *, tenant: str, session_id: str, turns: Sequence[Turn]
    ) -> None:
        """Append turns ``(role, content, metadata)`` to the session."""
        ...


class RegisteredPolicies(Protocol):
    """Policies consumers were registered with: each model's ``context_policy``."""

    async def registered_policy(self, tenant: str, consumer: str) -> list[str] | None:
        """The allow list ``consumer`` was registered with; None when it was not."""
        ...

    async def registered_policies(self, tenant: str) -> dict[str, list[str]]:
        """Every registered consumer of the tenant with its allow list."""
        ...


class ErasureListener(Protocol):
    """A domain that holds something of users outside the Context Mesh (spend, budgets,
    cached answers): told of each erasure, after the user's event key was destroyed."""

    async def erase_user(self, tenant: str, user_id: str, session_ids: Sequence[str]) -> int:
        """Forget ``user_id`` (and what was held for their ``session_ids``); returns how many
        things were changed or removed."""
        ...
