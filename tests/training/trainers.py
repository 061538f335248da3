"""Trainers that fail in each way a job must survive (imported only by the training process)."""

from __future__ import annotations

import time
from typing import Any


def boom(features: Any, labels: Any, params: dict[str, Any]) -> Any:
    raise ValueError("the trainer cannot cope with these labels")


def slow(features: Any, labels: Any, params: dict[str, Any]) -> Any:
    time.sleep(120)
    return None


def hog(features: Any, labels: Any, params: dict[str, Any]) -> Any:
    import numpy as np

    hoard = [np.ones(2**27) for _ in range(64)]  # 64 GiB, far past any limit given here
    return hoard
