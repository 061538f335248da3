"""Readiness checks by backend name; ``/readyz`` and the monitoring probe run them all."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

HealthCheck = Callable[[], Awaitable[None]]


class Readiness:
    def __init__(self) -> None:
        self.checks: dict[str, HealthCheck] = {}

    def add(self, name: str, check: HealthCheck) -> None:
        self.checks[name] = check
