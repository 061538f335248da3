"""One loader for the secret files in the data directory: the key pepper, the context handle
secret and the audit signing key.

A missing file is created with a fresh secret, written aside and linked into place, so of
several workers starting at once exactly one secret wins and nobody reads a half-written file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path


def random_text() -> bytes:
    return secrets.token_urlsafe(32).encode()


def load_secret_file(path: Path, make: Callable[[], bytes] = random_text) -> bytes:
    """The bytes of ``path``; a new secret from ``make()`` written there (0600) when absent."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(make())
                f.flush()
                os.fsync(f.fileno())
            # Of several processes creating it at once, the first link wins; all read that.
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            tmp.unlink()
    return path.read_bytes()
