"""Which store the platform picks, and its readiness check."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from meshgate.config import ConfigError, Settings, load_settings
from meshgate.context.backends.memory import MemoryContextStore
from meshgate.context.backends.redis import RedisContextStore
from meshgate.context.backends.sqlite import SqliteContextStore
from meshgate.context.invalidation import LocalBus, RedisBus
from tests.conftest import app_client


def context_of(client: Any) -> Any:
    return client.app.state.services.context


async def test_the_default_is_sqlite_in_the_data_dir(settings: Settings) -> None:
    async with app_client(settings) as c:
        service = context_of(c)
        assert isinstance(service.store, SqliteContextStore)
        assert isinstance(service.bus, LocalBus)
        assert (await c.get("/readyz")).status_code == 200
        await c.patch("/v1/context/users/u1", json={"attributes": {"a": 1}})
    assert (settings.data_dir / "context.db").exists()


async def test_redis_is_the_default_when_redis_url_is_set(
    make_settings: Callable[..., Settings], redis_url: str, namespace: str
) -> None:
    async with app_client(make_settings(redis_url=redis_url, namespace=namespace)) as c:
        service = context_of(c)
        assert isinstance(service.store, RedisContextStore)
        assert isinstance(service.bus, RedisBus)
        assert service.bus.channel == f"{namespace}:ctx:invalidate"
        ready = await c.get("/readyz")
        assert ready.status_code == 200 and "context" in ready.text


async def test_memory_can_be_chosen(make_settings: Callable[..., Settings]) -> None:
    async with app_client(make_settings(context={"url": "memory://"})) as c:
        assert isinstance(context_of(c).store, MemoryContextStore)


def test_an_unknown_store_url_names_the_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MESHGATE_CONTEXT__URL", "mongodb://x")
    with pytest.raises(ConfigError, match=r"context\.url"):
        load_settings()
