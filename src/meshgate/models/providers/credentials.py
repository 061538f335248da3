"""Where a provider's secrets come from: one function, so every provider reads them alike."""

from __future__ import annotations

import os


def secret(name: str | None) -> str | None:
    """The secret that ``name`` refers to (an environment variable), or None."""
    return os.environ.get(name) or None if name else None
