"""Small strategy objects for calling upstreams: backoff, retry and a circuit breaker.

Each is usable alone and takes its clock and randomness from outside, so tests drive time
instead of sleeping.
"""

from __future__ import annotations

import asyncio
import enum
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TypeVar

from meshgate.models.errors import CircuitOpen, Retryable

T = TypeVar("T")
Clock = Callable[[], float]


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: a random wait in [0, min(cap, base * 2**n)]."""

    base: float = 0.05
    cap: float = 2.0
    rand: Callable[[], float] = random.random

    def delay(self, failures: int) -> float:
        return self.rand() * min(self.cap, self.base * (2.0 ** (failures - 1)))


@dataclass(frozen=True)
class Retry:
    """Repeats a call on retryable failures only (a 4xx is the caller's fault: never retried)."""

    retries: int
    backoff: Backoff = field(default_factory=Backoff)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        failures = 0
        while True:
            try:
                return await fn()
            except Retryable:
                failures += 1
                if failures > self.retries:
                    raise
                await self.sleep(self.backoff.delay(failures))


class State(enum.IntEnum):
    """Values are what the ``meshgate_breaker_state`` gauge shows."""

    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


class CircuitBreaker:
    """Opens after ``failures`` consecutive failures; after ``reset_seconds`` lets one trial
    call through (half-open), which closes it on success or opens it again on failure."""

    def __init__(
        self,
        *,
        failures: int = 5,
        reset_seconds: float = 30.0,
        clock: Clock = time.monotonic,
        on_change: Callable[[State], None] | None = None,
    ):
        self.threshold = failures
        self.reset_seconds = reset_seconds
        self.clock = clock
        self.on_change = on_change
        self._state = State.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_running = False

    @property
    def state(self) -> State:
        if self._state is State.OPEN and self.clock() - self._opened_at >= self.reset_seconds:
            return State.HALF_OPEN
        return self._state

    def allows(self) -> bool:
        """Whether a call may go out now (claims the single half-open trial)."""
        if self._state is State.CLOSED:
            return True
        state = self.state
        if state is State.CLOSED:
            return True
        if state is State.HALF_OPEN and not self._trial_running:
            self._trial_running = True
            self._set(State.HALF_OPEN)
            return True
        return False

    def success(self) -> None:
        self._failures = 0
        self._trial_running = False
        if self._state is not State.CLOSED:
            self._set(State.CLOSED)

    def failure(self) -> None:
        self._failures += 1
        was_trial = self._trial_running
        self._trial_running = False
        if was_trial or self._failures >= self.threshold:
            self._opened_at = self.clock()
            self._set(State.OPEN)

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        if not self.allows():
            raise CircuitOpen("the upstream's circuit breaker is open")
        try:
            result = await fn()
        except Retryable:
            self.failure()
            raise
        except BaseException:
            # The caller's fault or a cancellation says nothing about the upstream's health.
            self._trial_running = False
            raise
        self.success()
        return result

    def _set(self, state: State) -> None:
        # A call failing while the breaker is already open restarts its open time but is no
        # move: listeners (a gauge, the cluster's reports) hear of each move once.
        moved = state is not self._state
        self._state = state
        if moved and self.on_change is not None:
            self.on_change(state)
