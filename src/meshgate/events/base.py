"""The event log port: an ordered, durable, append-only log of records.

Every backend (``backends/sqlite.py``, ``nats.py``, ``redis.py``) gives the same contract,
checked by one suite in ``tests/events``:

- ``append`` assigns consecutive sequences starting at 1 in append order and returns once the
  records are durable; a record whose (tenant, source, id) is already in the log is not stored
  again and comes back with the sequence it already has.
- ``read`` returns records with sequence > ``after`` in order, filtered by tenant, exact type,
  type prefix and subject.
- ``wait`` returns once a record after ``after`` may exist (or on timeout): the live tail.
- ``commit``/``committed`` keep a consumer group's offset, so a group resumes where it left
  off after a restart (at-least-once: commit after handling).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from meshgate.events.envelope import Record


@dataclass(frozen=True, slots=True)
class Filter:
    """What a reader wants to see; None means no restriction."""

    tenant: str | None = None
    type: str | None = None
    type_prefix: str | None = None
    subject: str | None = None

    def matches(self, record: Record) -> bool:
        return (
            (self.tenant is None or record.tenant == self.tenant)
            and (self.type is None or record.type == self.type)
            and (self.type_prefix is None or record.type.startswith(self.type_prefix))
            and (self.subject is None or record.subject == self.subject)
        )


EVERYTHING = Filter()


class EventLog(Protocol):
    name: str

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def ping(self) -> None: ...

    async def append(self, records: Sequence[Record]) -> list[Record]:
        """Store the records in order; returns them with their sequences, once durable."""
        ...

    async def read(
        self, after: int = 0, limit: int = 100, where: Filter = EVERYTHING
    ) -> list[Record]:
        """Up to ``limit`` matching records with sequence > ``after``, in log order."""
        ...

    async def last_sequence(self) -> int:
        """The sequence of the newest record, 0 when the log is empty."""
        ...

    async def wait(self, after: int, within: float) -> None:
        """Return soon after a record past ``after`` exists, or after ``within`` seconds."""
        ...

    async def commit(self, group: str, sequence: int) -> None:
        """Record that ``group`` has handled everything up to ``sequence``."""
        ...

    async def seek(self, group: str, sequence: int) -> None:
        """Set the group's offset, backwards too (replay)."""
        ...

    async def committed(self, group: str) -> int:
        """The group's committed offset, 0 for a new group."""
        ...
