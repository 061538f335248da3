"""Context handles: an opaque, signed reference to a tenant's session for outbound baggage.

A handle carries only the tenant and the session id (random, never personal data), signed
with HMAC-SHA256 so a service that hands it back cannot point it at another session.
Format: ``v1.<base64url(tenant \\x1f session_id)>.<base64url(mac)>``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from pathlib import Path

from meshgate.context.model import BadHandle
from meshgate.core.secrets import load_secret_file

VERSION = "v1"
KEY_FILE = "context_handle_key"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def load_secret(data_dir: Path) -> bytes:
    """The deployment's handle key from data_dir, created (0600) on first use."""
    return load_secret_file(Path(data_dir) / KEY_FILE).strip()


class HandleSigner:
    def __init__(self, secret: bytes):
        self._secret = secret

    def _mac(self, body: str) -> bytes:
        return hmac.new(self._secret, f"{VERSION}.{body}".encode(), hashlib.sha256).digest()

    def sign(self, tenant: str, session_id: str) -> str:
        body = _b64(f"{tenant}\x1f{session_id}".encode())
        return f"{VERSION}.{body}.{_b64(self._mac(body))}"

    def verify(self, handle: str) -> tuple[str, str]:
        """(tenant, session_id) of a handle this deployment issued; else ``BadHandle``."""
        parts = handle.split(".") if isinstance(handle, str) else []
        if len(parts) != 3 or parts[0] != VERSION:
            raise BadHandle("not a context handle")
        try:
            mac = _unb64(parts[2])
            tenant, _, session_id = _unb64(parts[1]).decode().partition("\x1f")
        except (ValueError, UnicodeDecodeError) as exc:
            raise BadHandle("not a context handle") from exc
        if not hmac.compare_digest(mac, self._mac(parts[1])) or not session_id:
            raise BadHandle("the context handle's signature does not match")
        return tenant, session_id

    def pseudonym(self, tenant: str, user_id: str) -> str:
        """A stable keyed reference to a user for audit and events, which outlive erasure."""
        digest = hmac.new(self._secret, f"user\x1f{tenant}\x1f{user_id}".encode(), hashlib.sha256)
        return digest.hexdigest()[:24]
