"""PostgreSQL (the SQL store) killed and frozen under load, on a cluster the test owns."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.conftest import Server
from tests.faults.conftest import Load, assert_unavailable, failing, sigterm, timed, wait_ready
from tests.faults.servers import PostgresInstance


def create_key(http: httpx.Client, i: int) -> httpx.Response:
    return http.post("/v1/admin/keys", json={"scopes": ["inference"], "description": f"k{i}"})


def create_acked(http: httpx.Client, i: int) -> bool:
    response = create_key(http, i)
    assert response.status_code in (201, 503), response.text
    return response.status_code == 201


def test_postgres_killed_then_frozen_under_load(
    serve: Callable[..., Server], postgres_instance: PostgresInstance
) -> None:
    postgres_instance.start()
    server = serve({"MESHGATE_DATABASE_URL": postgres_instance.url})
    wait_ready(server)
    load = Load(server, create_acked)
    with server.client() as http:
        while len(load.acked) < 5:
            pass
        postgres_instance.kill()  # an immediate shutdown, like a crash
        for i in range(3):
            assert_unavailable(*timed(lambda i=i: create_key(http, 10_000 + i)))
        assert "sql" in failing(server)

        postgres_instance.start()  # committed transactions replay from the WAL
        wait_ready(server)
        before = len(load.acked)
        while len(load.acked) < before + 5:
            pass
        acked = load.stop()
        listed = http.get("/v1/admin/keys").json()["keys"]
        assert {f"k{i}" for i in acked} <= {k["description"] for k in listed}

        postgres_instance.freeze()
        try:
            assert_unavailable(*timed(lambda: create_key(http, 20_000)))
            sigterm(server)  # shuts down while PostgreSQL hangs
        finally:
            postgres_instance.thaw()
