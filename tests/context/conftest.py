"""Fixtures of the context tests: a store of every backend, and a clock tests can move."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from meshgate.config import Settings
from meshgate.context.backends import ContextStore, open_context_store
from tests.conftest import app_client

UNSET = "model:unset"
"""A consumer with no policy set: the policy it was registered with (``registered``) decides."""

BACKENDS = ["memory", "sqlite", "redis"]


class Clock:
    """Wall-clock time that a test moves forward.

    Memory and SQLite read it, so moving it expires sessions at once; Redis expires keys on
    its own clock, so there ``advance`` really waits.
    """

    def __init__(self, real_wait: bool):
        self.offset = 0.0
        self.real_wait = real_wait

    def __call__(self) -> float:
        return time.time() + self.offset

    async def advance(self, seconds: float) -> None:
        if self.real_wait:
            await asyncio.sleep(seconds)
        else:
            self.offset += seconds


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def clock(backend: str) -> Clock:
    return Clock(real_wait=backend == "redis")


@pytest.fixture
def store_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'context.db'}"
    return str(request.getfixturevalue("redis_url"))


@pytest.fixture
async def store(
    store_url: str, clock: Clock, request: pytest.FixtureRequest
) -> AsyncIterator[ContextStore]:
    namespace = request.getfixturevalue("namespace")
    s = open_context_store(store_url, namespace=namespace, clock=clock)
    await s.start()
    yield s
    await s.close()


# --- the app in process, with a clock the test moves ----------------------------------------


@pytest.fixture
def app_clock() -> Clock:
    return Clock(real_wait=False)


@pytest.fixture
async def api(settings: Settings, app_clock: Clock) -> AsyncIterator[httpx.AsyncClient]:
    """The whole app in process (admin key), its context clock under the test's control."""
    async with app_client(settings, clock=app_clock) as c:
        yield c


async def make_key(api: httpx.AsyncClient, scopes: list[str], tenant: str | None = None) -> str:
    body: dict[str, Any] = {"scopes": scopes}
    if tenant:
        body["tenant"] = tenant
    r = await api.post("/v1/admin/keys", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["key"])


def as_key(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
