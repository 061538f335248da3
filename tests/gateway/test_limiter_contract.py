"""One contract for every limiter backend: memory and Redis (the real server)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from meshgate.limits import Bucket, Limiter, open_limiter


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest) -> AsyncIterator[Limiter]:
    if request.param == "memory":
        backend = open_limiter("memory://")
    else:
        url = request.getfixturevalue("redis_url")
        backend = open_limiter(url, namespace=request.getfixturevalue("namespace"))
    await backend.start()
    await backend.ping()
    yield backend
    await backend.close()


async def test_a_burst_gets_exactly_the_limit(limiter: Limiter) -> None:
    bucket = Bucket("{t}:burst", limit=5)
    decisions = [await limiter.check([bucket]) for _ in range(8)]
    assert [d.allowed for d in decisions] == [True] * 5 + [False] * 3
    assert [d.remaining for d in decisions[:5]] == [4, 3, 2, 1, 0]
    refused = decisions[-1]
    assert refused.retry_after > 0
    assert refused.headers()["retry-after"] == "12"  # 60 s / 5 per minute
    assert refused.headers()["ratelimit-limit"] == "5"


async def test_capacity_comes_back_at_the_rate(limiter: Limiter) -> None:
    bucket = Bucket("{t}:refill", limit=2, period=0.4)
    assert (await limiter.check([bucket])).allowed
    assert (await limiter.check([bucket])).allowed
    assert not (await limiter.check([bucket])).allowed
    await asyncio.sleep(0.25)  # one emission interval (0.2 s) later
    assert (await limiter.check([bucket])).allowed
    assert not (await limiter.check([bucket])).allowed


async def test_several_buckets_are_all_or_nothing(limiter: Limiter) -> None:
    wide = Bucket("{t}:wide", limit=100)
    narrow = Bucket("{t}:narrow", limit=1)
    assert (await limiter.check([wide, narrow])).allowed
    refused = await limiter.check([wide, narrow])
    assert not refused.allowed
    assert refused.limit == 1
    # The refused request charged nothing: the wide bucket lost only the first unit.
    assert (await limiter.check([wide])).remaining == 98


async def test_charged_tokens_put_the_bucket_in_debt(limiter: Limiter) -> None:
    tokens = Bucket("{t}:tpm", limit=1000, cost=0)
    assert (await limiter.check([tokens])).allowed
    await limiter.charge(Bucket("{t}:tpm", limit=1000, cost=2500))
    refused = await limiter.check([tokens])
    assert not refused.allowed
    assert 85 <= refused.retry_after <= 90  # 1500 tokens over 1000/min


async def test_buckets_are_independent(limiter: Limiter) -> None:
    assert (await limiter.check([Bucket("{a}:x", limit=1)])).allowed
    assert not (await limiter.check([Bucket("{a}:x", limit=1)])).allowed
    assert (await limiter.check([Bucket("{b}:x", limit=1)])).allowed
