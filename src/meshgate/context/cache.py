"""The read-through cache of the hot path: bounded, and safe against racing invalidations.

Entries are keyed by ``(tenant, kind, id)``. Every invalidation bumps an epoch; a reader
takes the epoch before it reads the store and its fill is dropped if any invalidation came
in between, so a value read before a write can never be cached after that write's
invalidation. Entries also expire after ``ttl`` seconds, which bounds staleness should an
invalidation be lost (a dropped connection to the message bus clears everything).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

Key = tuple[str, str, str]
MISSING = object()


class ContextCache:
    def __init__(
        self, size: int, ttl: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.size = size
        self.ttl = ttl
        self._clock = clock
        self._entries: OrderedDict[Key, tuple[float, Any]] = OrderedDict()
        self.epoch = 0
        self.hits = 0
        self.misses = 0

    def get(self, key: Key) -> Any:
        """The cached value (``None`` is a cached absence) or ``MISSING``."""
        entry = self._entries.get(key)
        if entry is None or entry[0] < self._clock():
            self.misses += 1
            return MISSING
        self.hits += 1
        return entry[1]

    def fill(self, key: Key, value: Any, epoch: int) -> None:
        """Cache ``value`` read at ``epoch``, unless an invalidation came since."""
        if self.size == 0 or epoch != self.epoch:
            return
        self._entries[key] = (self._clock() + self.ttl, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def invalidate(self, key: Key) -> None:
        self.epoch += 1
        self._entries.pop(key, None)

    def clear(self) -> None:
        self.epoch += 1
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
