"""PostgreSQL (the SQL store) down or frozen when the node starts, on a cluster the test owns.

The node serves at once: liveness 200, readiness 503 naming ``sql``, every other request a 503
with ``Retry-After``; it keeps trying, and serves once PostgreSQL answers, without a restart.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime

import httpx

from meshgate.startup import FIRST_ATTEMPT_SECONDS
from tests.conftest import Server
from tests.faults.conftest import (
    SLACK,
    assert_unavailable,
    failing,
    sigterm,
    timed,
    wait_ready,
)
from tests.faults.servers import PostgresInstance

PASSWORD = "pw-never-logged"
"""In the database URL: the test cluster trusts every connection, so it is never checked, but
the node must not write it anywhere."""


def url_of(postgres: PostgresInstance) -> str:
    return postgres.url.replace("postgres@", f"postgres:{PASSWORD}@", 1)


def create_key(http: httpx.Client, i: int) -> httpx.Response:
    return http.post("/v1/admin/keys", json={"scopes": ["inference"], "description": f"k{i}"})


def log_lines(server: Server) -> list[dict[str, str]]:
    text = server.log.read_text()
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def attempts(server: Server) -> list[str]:
    """The log lines of the failed start-up attempts."""
    lines = [line["message"] for line in log_lines(server)]
    return [m for m in lines if m.startswith("start-up waits for the SQL store (attempt")]


def wait_for_attempt(server: Server, n: int, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while len(attempts(server)) < n:
        assert time.monotonic() < deadline, f"no attempt {n} within {within} s"
        time.sleep(0.1)


def startup_seconds(server: Server) -> float:
    """From uvicorn's "Waiting for application startup." to its "startup complete"."""
    at = {
        line["message"]: datetime.fromisoformat(line["time"])
        for line in log_lines(server)
        if line["logger"] == "uvicorn.error"
    }
    started = at["Application startup complete."] - at["Waiting for application startup."]
    return started.total_seconds()


def test_postgres_down_at_start_then_back(
    serve: Callable[..., Server], postgres_instance: PostgresInstance
) -> None:
    port = str(postgres_instance.port)
    server = serve({"MESHGATE_DATABASE_URL": url_of(postgres_instance)})  # not running
    # The listener did not wait for the store: one bounded attempt, then it serves.
    assert startup_seconds(server) < FIRST_ATTEMPT_SECONDS + SLACK
    down = failing(server)
    assert set(down) == {"starting", "sql"}
    assert port not in str(down)
    with server.client() as http:
        assert http.get("/healthz").status_code == 200
        assert_unavailable(*timed(lambda: create_key(http, 0)), port, PASSWORD)
        assert_unavailable(*timed(lambda: http.get("/v1/whoami")), port, PASSWORD)
        # The OpenAI-compatible routes answer in their own shape, still a 503 to retry.
        models = http.get("/v1/models")
        assert models.status_code == 503 and models.headers["retry-after"].isdigit()
        assert models.json()["error"]["code"] == "backend-unavailable"

        # Down long enough for the retries to reach their longest pause: the return is then
        # noticed no later than in the steady state of a long outage.
        wait_for_attempt(server, 4)
        assert_unavailable(*timed(lambda: create_key(http, 0)), port, PASSWORD)

        postgres_instance.start()
        wait_ready(server)  # within READY_WITHIN of PostgreSQL's return, same process
        created = create_key(http, 1)
        assert created.status_code == 201, created.text
        listed = http.get("/v1/admin/keys").json()["keys"]
        assert "k1" in {k["description"] for k in listed}
        assert http.get("/v1/whoami").status_code == 200
    assert len(attempts(server)) >= 4  # each failed attempt is logged
    assert PASSWORD not in server.log.read_text()
    sigterm(server)


def test_sigterm_while_postgres_is_down_at_start(
    serve: Callable[..., Server], postgres_instance: PostgresInstance
) -> None:
    server = serve({"MESHGATE_DATABASE_URL": url_of(postgres_instance)})  # not running
    assert "sql" in failing(server)
    sigterm(server)


def test_postgres_frozen_at_start(
    serve: Callable[..., Server], postgres_instance: PostgresInstance
) -> None:
    postgres_instance.start()
    postgres_instance.freeze()  # accepts connections (the kernel does), answers nothing
    try:
        server = serve({"MESHGATE_DATABASE_URL": url_of(postgres_instance)})
        assert startup_seconds(server) < FIRST_ATTEMPT_SECONDS + SLACK
        assert set(failing(server)) == {"starting", "sql"}
        with server.client() as http:
            assert_unavailable(*timed(lambda: create_key(http, 0)), PASSWORD)
        sigterm(server)  # shuts down while PostgreSQL hangs, mid-attempt or between two
    finally:
        postgres_instance.thaw()
