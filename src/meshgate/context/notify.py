"""What the Context Mesh tells the rest of the platform: events and audit records.

Users appear in both only as a keyed pseudonym (``user_ref``): the audit chain and event
metadata outlive an erasure, so they must never hold the user id itself. The user id goes
only into an event's personal part, which the event backbone encrypts with the user's key
and which reads as erased once that key is shredded.
"""

from __future__ import annotations

from typing import Any, Protocol

from meshgate.context.handle import HandleSigner
from meshgate.context.model import Json
from meshgate.events.catalogue import (
    CONTEXT_ERASED,
    CONTEXT_UPDATED,
    ContextErased,
    ContextUpdated,
)
from meshgate.events.ports import EventPublisher, UserKeys
from meshgate.governance.ports import AuditRecorder


class Events(EventPublisher, UserKeys, Protocol):
    """The event backbone as the Context Mesh uses it."""


class Notifier:
    def __init__(
        self,
        signer: HandleSigner,
        events: Events,
        audit: AuditRecorder,
    ):
        self.signer = signer
        self.events = events
        self.audit = audit

    def user_ref(self, tenant: str, user_id: str) -> str:
        return self.signer.pseudonym(tenant, user_id)

    async def updated(self, tenant: str, user_id: str, data: Json) -> None:
        """``meshgate.context.updated`` for a write concerning ``user_id``."""
        ref = self.user_ref(tenant, user_id)
        await self.events.publish(
            CONTEXT_UPDATED.name,
            tenant=tenant,
            subject=f"context/users/{ref}",
            data=CONTEXT_UPDATED.data(ContextUpdated(user_ref=ref, **data)),
            personal={"user_id": user_id},
            user_id=user_id,
            source="/meshgate/context",
        )

    async def session_updated(self, tenant: str, session_id: str, data: Json) -> None:
        """``meshgate.context.updated`` for a session's interactions or state: the session id
        only, which is random; the content stays in the store, where erasure reaches it."""
        payload = ContextUpdated(**{"what": "interactions", "session_id": session_id, **data})
        await self.events.publish(
            CONTEXT_UPDATED.name,
            tenant=tenant,
            subject=f"context/sessions/{session_id}",
            data=CONTEXT_UPDATED.data(payload),
            source="/meshgate/context",
        )

    async def shred(self, tenant: str, user_id: str) -> int:
        """Destroy the user's event data key; returns how many keys were destroyed."""
        return await self.events.shred_user(tenant, user_id)

    async def erased(self, tenant: str, user_id: str, data: Json) -> None:
        """``meshgate.context.erased``, naming the user only by pseudonym."""
        ref = self.user_ref(tenant, user_id)
        await self.events.publish(
            CONTEXT_ERASED.name,
            tenant=tenant,
            subject=f"context/users/{ref}",
            data=CONTEXT_ERASED.data(ContextErased(user_ref=ref, **data)),
            source="/meshgate/context",
        )

    async def record(
        self, *, actor: str, tenant: str, action: str, resource: str, details: dict[str, Any]
    ) -> None:
        await self.audit.record(
            actor=actor, tenant=tenant, action=action, resource=resource, details=details
        )
