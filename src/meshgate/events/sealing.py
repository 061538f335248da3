"""Encryption at rest of the domain's secrets: users' data keys and webhook secrets.

They are sealed with AES-256-GCM under a key derived (HKDF-SHA256) from the deployment's key
pepper, so neither the SQL store nor anything that logs its statements ever holds one in
clear. Every process of a deployment shares the pepper, hence the key; changing the pepper
makes the sealed values unreadable (data keys then read as erased).
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE_BYTES = 12


class SealError(Exception):
    """A sealed value cannot be opened (another pepper, or tampered with)."""


def derive(pepper: bytes, purpose: str) -> bytes:
    """A 256-bit key for one purpose, derived from the pepper (HKDF-SHA256)."""
    return HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=f"meshgate:{purpose}".encode()
    ).derive(pepper)


class Sealer:
    def __init__(self, pepper: bytes, purpose: str):
        self._aead = AESGCM(derive(pepper, purpose))

    def seal(self, clear: bytes, context: str) -> bytes:
        """``context`` binds the value to its row: it cannot be moved to another one."""
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, clear, context.encode())

    def open(self, sealed: bytes, context: str) -> bytes:
        try:
            return self._aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], context.encode())
        except (InvalidTag, ValueError) as exc:
            raise SealError(str(exc) or "cannot open sealed value") from exc
