"""Authentication: API keys, tenants, scopes."""

from meshgate.auth.keys import KeyService, Limits
from meshgate.auth.principal import SCOPES, Principal

__all__ = ["SCOPES", "KeyService", "Limits", "Principal"]
