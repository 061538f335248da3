"""Readiness checks by backend name; ``/readyz`` and the monitoring probe run them all."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

HealthCheck = Callable[[], Awaitable[None]]


class Readiness:
    def __init__(self) -> None:
        self.checks: dict[str, HealthCheck] = {}
        self._held: dict[str, HealthCheck] | None = None

    def add(self, name: str, check: HealthCheck) -> None:
        (self._held if self._held is not None else self.checks)[name] = check

    def hold(self, checks: dict[str, HealthCheck]) -> None:
        """Until :meth:`release`, only ``checks`` run: the node is still starting, and the
        backends the other checks ask have no started service behind them yet."""
        if self._held is None:
            self._held = self.checks
        self.checks = checks

    def release(self) -> None:
        """The checks added with :meth:`add` run again (the node has started)."""
        if self._held is not None:
            self.checks, self._held = self._held, None
