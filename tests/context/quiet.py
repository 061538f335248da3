"""Ports of the Context Mesh's neighbours that take everything and keep nothing, for tests of
the context service alone (its store and bus stay real)."""

from __future__ import annotations

from typing import Any

from meshgate.context.handle import HandleSigner
from meshgate.context.notify import Notifier


class QuietEvents:
    async def publish(self, type: str, **kwargs: Any) -> Any:
        return None

    async def shred_user(self, tenant: str, user_id: str) -> int:
        return 0


class QuietAudit:
    async def record(self, **kwargs: Any) -> dict[str, Any]:
        return {}


def quiet_notifier(signer: HandleSigner) -> Notifier:
    return Notifier(signer, QuietEvents(), QuietAudit())


class NothingRegistered:
    """A registry without models: no consumer registered a policy."""

    async def registered_policy(self, tenant: str, consumer: str) -> list[str] | None:
        return None

    async def registered_policies(self, tenant: str) -> dict[str, list[str]]:
        return {}
