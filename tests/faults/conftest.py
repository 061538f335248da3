"""Fault tests: a real ``meshgate serve`` against backend servers the test owns."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Server, unavailable
from tests.faults.servers import NatsInstance, PostgresInstance, RedisInstance, have, postgres_bin

BOUND = 1.0
"""``backend_timeout_seconds`` (the default) under test."""
SLACK = 2.0
"""What a loaded 2-core CI machine may add to a bounded answer."""
READY_WITHIN = 5.0
START_WITHIN = 120.0
"""A server's own start (imports) on a machine busy with other test runs."""


class FaultServer(Server):
    def wait_ready(self, timeout: float = START_WITHIN) -> None:
        super().wait_ready(timeout)


@pytest.fixture
def serve(tmp_path: Path, namespace: str) -> Iterator[Callable[..., Server]]:
    """``serve(env)``: a real ``meshgate serve`` in the test's namespace, stopped after."""
    servers: list[Server] = []

    def start(env: dict[str, str]) -> Server:
        server = FaultServer({"MESHGATE_NAMESPACE": namespace, **env}, tmp_path / "data")
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def redis_instance(tmp_path: Path) -> Iterator[RedisInstance]:
    if not have("redis-server"):
        unavailable("redis-server", "not installed")
    instance = RedisInstance(tmp_path)
    yield instance
    instance.kill()


@pytest.fixture
def nats_instance(tmp_path: Path) -> Iterator[NatsInstance]:
    if not have("nats-server"):
        unavailable("nats-server", "not installed")
    instance = NatsInstance(tmp_path)
    yield instance
    instance.kill()


@pytest.fixture
def postgres_instance(tmp_path: Path) -> Iterator[PostgresInstance]:
    bin_dir = postgres_bin()
    if bin_dir is None:
        unavailable("PostgreSQL binaries", "none under /usr/lib/postgresql/*/bin")
        raise AssertionError  # unreachable: unavailable() skips or fails
    instance = PostgresInstance(tmp_path, bin_dir)
    yield instance
    instance.kill()
    instance.cleanup()


def timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def assert_unavailable(response: httpx.Response, elapsed: float, *hidden: str) -> None:
    """A 503 problem with Retry-After, within the bound, naming no internal address."""
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"].isdigit()
    assert response.headers["content-type"].startswith("application/problem+json")
    detail = response.json()["detail"]
    assert detail and "unavailable" in detail
    for secret in ("127.0.0.1", "localhost", *hidden):
        assert secret not in response.text
    assert elapsed < BOUND + SLACK, f"answered after {elapsed:.2f} s"


def wait_ready(server: Server, within: float = READY_WITHIN) -> float:
    """Seconds until ``/readyz`` answers 200; fails past ``within`` (plus slack)."""
    started = time.monotonic()
    with httpx.Client(base_url=server.url, timeout=5) as http:
        while time.monotonic() - started < within + SLACK:
            if http.get("/readyz").status_code == 200:
                return time.monotonic() - started
            time.sleep(0.05)
    raise AssertionError(f"not ready {within + SLACK} s after the backend returned")


def failing(server: Server) -> dict[str, Any]:
    with httpx.Client(base_url=server.url, timeout=10) as http:
        response = http.get("/readyz")
    assert response.status_code == 503, response.text
    return dict(response.json()["failing"])


def sigterm(server: Server, within: float = 20.0) -> None:
    """SIGTERM ends the process within ``within`` seconds, whatever its backends do. A quiet
    machine takes 2.5 to 4 s with PostgreSQL frozen; the bound catches a hang, well inside the
    45 s the deployment gives a pod, and leaves room for a test machine running other suites."""
    started = time.monotonic()
    server.proc.terminate()
    server.proc.wait(within + SLACK)
    assert time.monotonic() - started < within + SLACK


class Load:
    """Writes in a background thread: ``write(client, i)`` returns True when acknowledged."""

    def __init__(self, server: Server, write: Callable[[httpx.Client, int], bool]):
        self.acked: list[int] = []
        self.statuses: list[int] = []
        self._stop = threading.Event()
        self._server = server
        self._write = write
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        i = 0
        with self._server.client() as http:
            while not self._stop.is_set():
                try:
                    if self._write(http, i):
                        self.acked.append(i)
                except httpx.HTTPError:
                    pass  # no answer is no acknowledgement
                i += 1
                time.sleep(0.01)

    def stop(self) -> list[int]:
        self._stop.set()
        self._thread.join(30)
        return self.acked
