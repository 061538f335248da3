"""Shared fixtures: settings, in-process apps, real servers and the real backends.

A scale-out backend that does not answer is a skip on a developer's machine and a failure in
CI (``CI=true``), so a green CI run always means the backends were really exercised.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis

from meshgate.app import create_app
from meshgate.config import Settings

IN_CI = os.environ.get("CI", "").lower() == "true"
ADMIN_KEY = "mg_test_admin_" + "x" * 32
POSTGRES_BASE = os.environ.get("MESHGATE_TEST_POSTGRES", "postgresql://127.0.0.1:5432/test")
REDIS_BASE = os.environ.get("MESHGATE_TEST_REDIS", "redis://127.0.0.1:6379")
NATS_URL = os.environ.get("MESHGATE_TEST_NATS", "nats://127.0.0.1:4222")
# The fake upstreams and webhook receivers of the tests listen on loopback, which the egress
# policy refuses by default: the tests allow it explicitly, as an operator would.
LOOPBACK = ["127.0.0.0/8", "::1"]


def unavailable(what: str, why: object) -> None:
    message = f"{what} is unreachable: {why}"
    if IN_CI:
        pytest.fail(message + " (CI=true: backends must be running)")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- real backends -------------------------------------------------------------------------


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh schema in the test database, dropped afterwards."""
    schema = "t_" + secrets.token_hex(6)
    try:
        with psycopg.connect(POSTGRES_BASE, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
    except psycopg.Error as exc:
        unavailable("PostgreSQL", exc)
    yield f"{POSTGRES_BASE}?options=-csearch_path%3D{schema}"
    with psycopg.connect(POSTGRES_BASE, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def namespace() -> str:
    """A fresh ``namespace`` setting: Redis keys and NATS streams no other test touches."""
    return "t" + secrets.token_hex(5)


@pytest.fixture
def redis_url(namespace: str) -> Iterator[str]:
    """Database 15 of the local Redis; the test's keys (under its namespace) removed after."""
    url = f"{REDIS_BASE}/15"
    client = redis.Redis.from_url(url, socket_connect_timeout=3)
    try:
        client.ping()
    except redis.RedisError as exc:
        unavailable("Redis", exc)
    yield url
    for key in client.scan_iter(f"{namespace}*", count=1000):
        client.delete(key)
    client.close()


@pytest.fixture
def nats_url() -> str:
    host, port = NATS_URL.removeprefix("nats://").split(":")
    try:
        socket.create_connection((host, int(port)), timeout=3).close()
    except OSError as exc:
        unavailable("NATS", exc)
    return NATS_URL


# --- the platform in process ---------------------------------------------------------------


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "admin_key": ADMIN_KEY,
            "security": {"egress_allow": LOOPBACK},
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """The whole app in process, started, with the admin key as default credentials."""
    async with app_client(settings) as c:
        yield c


class app_client:
    """``async with app_client(settings) as client``: app started, admin key set."""

    def __init__(self, settings: Settings, **app_kwargs: Any):
        self.app = create_app(settings, **app_kwargs)

    async def __aenter__(self) -> httpx.AsyncClient:
        self._lifespan = self.app.router.lifespan_context(self.app)
        await self._lifespan.__aenter__()
        self._client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app),
            base_url="http://meshgate.test",
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
        )
        self._client.app = self.app  # type: ignore[attr-defined]
        return self._client

    async def __aexit__(self, *exc: object) -> None:
        await self._client.aclose()
        await self._lifespan.__aexit__(None, None, None)


# --- real servers --------------------------------------------------------------------------


class Server:
    """One ``meshgate serve`` process on a free port."""

    def __init__(self, env: dict[str, str], data_dir: Path, args: list[str] | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir / f"server-{self.port}.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        full_env = {
            **os.environ,
            "MESHGATE_PORT": str(self.port),
            "MESHGATE_DATA_DIR": str(data_dir),
            "MESHGATE_ADMIN_KEY": ADMIN_KEY,
            "MESHGATE_KEY_PEPPER": "test-pepper",
            "MESHGATE_SECURITY__EGRESS_ALLOW": json.dumps(LOOPBACK),
            **env,
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "meshgate", "serve", *(args or [])],
            env=full_env,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        try:
            self.wait_ready()
        except BaseException:
            self.proc.kill()  # a server that never became ready must not outlive its test
            self.proc.wait()
            raise

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/healthz", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not start: {self.log.read_text()[-3000:]}")

    def client(self, key: str = ADMIN_KEY, **kwargs: Any) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=10, **kwargs
        )

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """``start_server(env={...})`` runs a real server; every one is stopped afterwards."""
    servers: list[Server] = []

    def start(
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
        data_dir: Path | None = None,
    ) -> Server:
        server = Server(env or {}, data_dir or tmp_path / "data", args)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
