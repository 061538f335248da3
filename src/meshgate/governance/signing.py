"""The Ed25519 key that signs checkpoints: loaded from settings or data_dir, made on first start.

The private key never leaves this module's objects; what is published is the public key and
its id (the first 16 hex digits of the SHA-256 of its 32 raw bytes).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from meshgate.core.secrets import load_secret_file
from meshgate.errors import ValidationFailed
from meshgate.governance.chain import checkpoint_payload, key_id_of
from meshgate.governance.config import AuditConfig

KEY_FILE = "audit_signing_key.pem"


class SigningKeyError(ValidationFailed):
    """A configured key cannot be read."""


class Signer:
    def __init__(self, private: Ed25519PrivateKey, trusted: list[Ed25519PublicKey] | None = None):
        self._private = private
        self.public = private.public_key()
        self.key_id = key_id_of(self.public)
        self.keys: dict[str, Ed25519PublicKey] = {key_id_of(k): k for k in trusted or []}
        self.keys[self.key_id] = self.public

    def sign_checkpoint(self, sequence: int, hash_: str, time: str, max_gap: int) -> str:
        signature = self._private.sign(checkpoint_payload(sequence, hash_, time, max_gap))
        return base64.b64encode(signature).decode()

    def describe(self) -> dict[str, Any]:
        return {
            "algorithm": "Ed25519",
            "key_id": self.key_id,
            "public_key": public_b64(self.public),
            "pem": public_pem(self.public),
            "trusted": [
                {"key_id": kid, "public_key": public_b64(k)}
                for kid, k in self.keys.items()
                if kid != self.key_id
            ],
        }


def public_b64(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def public_pem(key: Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def parse_private(text: str) -> Ed25519PrivateKey:
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(text, validate=True))
    except ValueError as exc:
        raise SigningKeyError("audit signing key: not an Ed25519 private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError("audit signing key: not an Ed25519 private key")
    return key


def parse_public(text: str) -> Ed25519PublicKey:
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode())
        else:
            key = Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True))
    except ValueError as exc:
        raise SigningKeyError("audit public key: not an Ed25519 public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError("audit public key: not an Ed25519 public key")
    return key


def find_signer(config: AuditConfig, data_dir: Path) -> Signer | None:
    """The configured key, else the one in data_dir, else None (nothing is created)."""
    trusted = [parse_public(k) for k in config.trusted_public_keys]
    if config.signing_key is not None:
        return Signer(parse_private(config.signing_key.get_secret_value()), trusted)
    path = Path(data_dir) / KEY_FILE
    return Signer(parse_private(path.read_text()), trusted) if path.exists() else None


def load_signer(config: AuditConfig, data_dir: Path) -> Signer:
    """The configured key, else the one in data_dir, else a new one written there (0600)."""
    trusted = [parse_public(k) for k in config.trusted_public_keys]
    if config.signing_key is not None:
        return Signer(parse_private(config.signing_key.get_secret_value()), trusted)
    pem = load_secret_file(Path(data_dir) / KEY_FILE, new_private_pem)
    return Signer(parse_private(pem.decode()), trusted)


def new_private_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
