"""Who is calling: the verified key, its tenant and its scopes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

SCOPES = (
    "admin",
    "inference",
    "context:read",
    "context:write",
    "events:read",
    "events:write",
    "registry:write",
    "audit:read",
)


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: str
    tenant: str
    scopes: frozenset[str]
    rpm: int
    tpm: int
    tenant_rpm: int
    tenant_tpm: int
    expires_at: datetime | None = None
    is_root: bool = False
    """A key of the root tenant with ``admin`` manages every tenant's keys."""
    models: frozenset[str] | None = None
    """The only models this key may call; ``None``: every model of its tenant."""
    user_id: str | None = None
    """The end user this caller has proven to be (a user's token), if any; an API key is
    no user, it can only assert one with ``users:assert``."""

    def may_call(self, model: str) -> bool:
        return self.models is None or model in self.models

    @property
    def is_admin(self) -> bool:
        return "admin" in self.scopes

    def has(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes
