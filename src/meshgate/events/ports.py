"""What other domains need of the event backbone: append an event, shred a user's key, name a
user by pseudonym."""

from __future__ import annotations

from typing import Any, Protocol

from meshgate.events.envelope import Event


class EventPublisher(Protocol):
    async def publish(
        self,
        type: str,
        *,
        tenant: str,
        data: Any,
        subject: str | None = None,
        personal: Any = None,
        user_id: str | None = None,
        source: str = "/meshgate",
        id: str | None = None,
    ) -> Event:
        """Append one event; returns once it is durable, with its sequence."""
        ...

    def accepting(self) -> bool:
        """False when an event published now is known to fail (the log and its fallback both
        refused their last use): work whose event is its record may be refused up front."""
        ...


class UserKeys(Protocol):
    async def shred_user(self, tenant: str, user_id: str) -> int:
        """Destroy the user's data key; their personal parts read as erased from now on."""
        ...


class Pseudonyms(Protocol):
    def user_ref(self, tenant: str, user_id: str) -> str:
        """The keyed pseudonym the log names ``user_id`` by: stable, not reversible without
        the key; for records that outlive an erasure (the audit trail)."""
        ...
