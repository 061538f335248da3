"""Who is calling: the verified key (or, later, a user's token), its tenant and its scopes.

The scopes are listed here and only here, each with what it reaches; ``docs/security.md``
and the key routes read them from this table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

SCOPE_DESCRIPTIONS: dict[str, str] = {
    "admin": "every other scope; keys of its tenant (of every tenant for the root tenant)",
    "inference": "call the tenant's models (OpenAI, V2 routes); read the registry",
    "context:read": "read the tenant's user profiles, sessions and policies",
    "context:write": "change the tenant's user profiles, sessions and policies",
    "events:read": "read and stream the tenant's events; its webhook subscriptions",
    "events:write": "publish integration events; manage webhook subscriptions",
    "registry:write": "register models and versions, set aliases and traffic",
    "audit:read": "read the tenant's audit trail and monitoring",
    "users:assert": "speak for end users: x-user-id, OpenAI's 'user', another user's session",
}
SCOPES = tuple(SCOPE_DESCRIPTIONS)


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
    user_id: str | None = None
    """The end user this caller has proven to be (a user's token), if any; an API key is
    no user, it can only assert one with ``users:assert``."""
    models: frozenset[str] | None = None
    """The only models this key may call; ``None``: every model of its tenant."""

    def may_call(self, model: str) -> bool:
        return self.models is None or model in self.models

    @property
    def is_admin(self) -> bool:
        return "admin" in self.scopes

    @property
    def tenant_filter(self) -> str | None:
        """The tenant whose keys, spend and budgets this caller sees; None (every tenant)
        for a root admin."""
        return None if self.is_root else self.tenant

    def has(self, scope: str) -> bool:
        return "admin" in self.scopes or scope in self.scopes
