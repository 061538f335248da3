"""Authentication: API keys, tenants, scopes."""

from meshgate.auth.keys import KeyService, Limits, new_key_id
from meshgate.auth.principal import SCOPES, Principal

__all__ = ["SCOPES", "KeyService", "Limits", "Principal", "new_key_id"]
