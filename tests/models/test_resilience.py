"""Backoff, retry and the circuit breaker as small objects, with time injected."""

from __future__ import annotations

import pytest

from meshgate.models.errors import CircuitOpen, UpstreamRejected, UpstreamUnavailable
from meshgate.models.resilience import Backoff, CircuitBreaker, Retry, State


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Upstream:
    def __init__(self, failures: list[Exception | None]):
        self.outcomes = failures
        self.calls = 0

    async def __call__(self) -> str:
        outcome = self.outcomes[min(self.calls, len(self.outcomes) - 1)]
        self.calls += 1
        if outcome is not None:
            raise outcome
        return "ok"


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    top = Backoff(base=0.1, cap=1.0, rand=lambda: 1.0)
    assert [top.delay(n) for n in (1, 2, 3, 4, 5)] == [0.1, 0.2, 0.4, 0.8, 1.0]
    assert Backoff(base=0.1, rand=lambda: 0.25).delay(3) == pytest.approx(0.1)


async def test_retry_retries_retryable_failures_only() -> None:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    retry = Retry(2, Backoff(base=0.1, rand=lambda: 1.0), sleep=sleep)
    flaky = Upstream([UpstreamUnavailable("down"), UpstreamUnavailable("down"), None])
    assert await retry.call(flaky) == "ok"
    assert flaky.calls == 3 and slept == [0.1, 0.2]

    rejected = Upstream([UpstreamRejected("your fault")])
    with pytest.raises(UpstreamRejected):
        await retry.call(rejected)
    assert rejected.calls == 1  # a 4xx is never retried

    down = Upstream([UpstreamUnavailable("down")])
    with pytest.raises(UpstreamUnavailable):
        await retry.call(down)
    assert down.calls == 3


async def test_breaker_opens_half_opens_and_closes() -> None:
    clock = Clock()
    states: list[State] = []
    breaker = CircuitBreaker(failures=3, reset_seconds=10, clock=clock, on_change=states.append)
    down = Upstream([UpstreamUnavailable("down")])
    for _ in range(3):
        with pytest.raises(UpstreamUnavailable):
            await breaker.call(down)
    assert breaker.state is State.OPEN
    with pytest.raises(CircuitOpen):
        await breaker.call(down)
    assert down.calls == 3  # open: no call went out

    clock.now += 10
    assert breaker.state is State.HALF_OPEN
    with pytest.raises(UpstreamUnavailable):
        await breaker.call(down)  # the trial fails: open again, for another full period
    assert breaker.state is State.OPEN
    clock.now += 9.9
    with pytest.raises(CircuitOpen):
        await breaker.call(down)

    clock.now += 0.1
    up = Upstream([None])
    assert await breaker.call(up) == "ok"
    assert breaker.state is State.CLOSED
    assert states == [State.OPEN, State.HALF_OPEN, State.OPEN, State.HALF_OPEN, State.CLOSED]


async def test_breaker_lets_one_trial_through_and_ignores_caller_errors() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=1, reset_seconds=1, clock=clock)
    with pytest.raises(UpstreamUnavailable):
        await breaker.call(Upstream([UpstreamUnavailable("down")]))
    clock.now += 1
    assert breaker.allows() is True
    assert breaker.allows() is False  # one trial at a time
    breaker.success()
    for _ in range(5):
        with pytest.raises(UpstreamRejected):
            await breaker.call(Upstream([UpstreamRejected("bad input")]))
    assert breaker.state is State.CLOSED
