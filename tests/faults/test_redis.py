"""Redis (context store, limiter, invalidation bus) down at start, killed and frozen."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.conftest import Server
from tests.faults.conftest import (
    Load,
    assert_unavailable,
    failing,
    sigterm,
    timed,
    wait_ready,
)
from tests.faults.servers import RedisInstance

PATCH = {"content-type": "application/merge-patch+json"}


def env_for(redis: RedisInstance) -> dict[str, str]:
    return {"MESHGATE_REDIS_URL": redis.url}


def write_user(http: httpx.Client, i: int) -> bool:
    response = http.patch(f"/v1/context/users/u{i}", json={"preferences": {"n": i}}, headers=PATCH)
    assert response.status_code in (200, 201, 503), response.text
    return response.status_code in (200, 201)


def test_redis_down_at_start_then_back(
    serve: Callable[..., Server], redis_instance: RedisInstance
) -> None:
    server = serve(env_for(redis_instance))  # Redis is not running
    down = failing(server)
    assert {"context", "limiter"} <= set(down)
    assert str(redis_instance.port) not in str(down)
    with server.client() as http:
        assert http.get("/v1/whoami").status_code == 200  # needs no Redis: goes on
        assert_unavailable(*timed(lambda: write_user_response(http, 1)), str(redis_instance.port))

        redis_instance.start()
        wait_ready(server)
        assert write_user(http, 1)
        assert http.get("/v1/context/users/u1").json()["preferences"] == {"n": 1}
    sigterm(server)


def write_user_response(http: httpx.Client, i: int) -> httpx.Response:
    return http.patch(f"/v1/context/users/u{i}", json={"preferences": {"n": i}}, headers=PATCH)


def test_redis_killed_then_frozen_under_load(
    serve: Callable[..., Server], redis_instance: RedisInstance
) -> None:
    redis_instance.start()
    server = serve(env_for(redis_instance))
    wait_ready(server)
    load = Load(server, write_user)
    with server.client() as http:
        while len(load.acked) < 5:
            pass
        redis_instance.kill()
        for i in range(3):
            assert_unavailable(*timed(lambda i=i: write_user_response(http, 10_000 + i)))
            assert http.get("/v1/whoami").status_code == 200
        assert {"context", "limiter"} <= set(failing(server))

        redis_instance.start()  # same data directory: the append-only file is replayed
        wait_ready(server)
        before = len(load.acked)
        while len(load.acked) < before + 5:
            pass
        acked = load.stop()
        for i in acked:  # every acknowledged write is there
            assert http.get(f"/v1/context/users/u{i}").json()["preferences"] == {"n": i}

        redis_instance.freeze()
        try:
            assert_unavailable(*timed(lambda: write_user_response(http, 20_000)))
            whoami, _ = timed(lambda: http.get("/v1/whoami"))
            assert whoami.status_code == 200
            sigterm(server)  # shuts down while Redis hangs
        finally:
            redis_instance.thaw()
