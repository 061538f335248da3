"""Python entry points the tests declare in their config (never registrable by the API)."""

from __future__ import annotations

import numpy as np


def risk(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A toy regression: income in thousands plus age."""
    return {"score": inputs["income"] / 1000 + inputs["age"]}
