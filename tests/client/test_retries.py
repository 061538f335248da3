"""Retries against a real HTTP server that answers 429 and 503 with ``Retry-After``."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from meshgate.client import (
    APIConnectionError,
    AsyncClient,
    Client,
    RateLimitError,
    RetryPolicy,
    ServiceUnavailableError,
)
from meshgate.client._http import retry_after
from tests.conftest import free_port


class Script:
    """Answers given in order; every request is recorded with its headers."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, dict[str, str]]] = []
        self.seen: list[tuple[float, dict[str, str]]] = []


@pytest.fixture
def upstream() -> Iterator[tuple[str, Script]]:
    script = Script()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.answer()

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            self.answer()

        def answer(self) -> None:
            script.seen.append((time.monotonic(), {k.lower(): v for k, v in self.headers.items()}))
            status, headers = script.answers.pop(0) if script.answers else (200, {})
            body = (
                {"key_id": "k", "tenant": "t", "scopes": []}
                if status == 200
                else {"type": "x", "title": "Busy", "status": status, "detail": "slow down"}
            )
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/problem+json")
            self.send_header("content-length", str(len(data)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", script
    httpd.shutdown()


def test_429_and_503_are_retried_after_the_time_asked(upstream: tuple[str, Script]) -> None:
    url, script = upstream
    script.answers = [(429, {"retry-after": "1"}), (503, {"retry-after": "0"})]
    with Client(url, "k") as mesh:
        assert mesh.whoami().tenant == "t"
    times = [t for t, _ in script.seen]
    assert len(times) == 3
    assert times[1] - times[0] >= 0.95  # waited as Retry-After asked


def test_a_wait_longer_than_allowed_raises_at_once(upstream: tuple[str, Script]) -> None:
    url, script = upstream
    script.answers = [(503, {"retry-after": "3600"})]
    mesh = Client(url, "k", retry=RetryPolicy(max_wait=5))
    with mesh, pytest.raises(ServiceUnavailableError) as raised:
        mesh.whoami()
    assert raised.value.detail == "slow down" and len(script.seen) == 1


async def test_retries_give_up_after_the_attempts(upstream: tuple[str, Script]) -> None:
    url, script = upstream
    script.answers = [(429, {"retry-after": "0"})] * 5
    async with AsyncClient(url, "k", retry=RetryPolicy(attempts=2)) as mesh:
        with pytest.raises(RateLimitError):
            await mesh.whoami()
    assert len(script.seen) == 3


def test_a_post_keeps_its_idempotency_key_across_retries(upstream: tuple[str, Script]) -> None:
    url, script = upstream
    script.answers = [(503, {"retry-after": "0"})]
    with Client(url, "k") as mesh:
        from meshgate.client import _ops

        mesh.call(_ops.Op("POST", "/v1/events", _ops.raw_json, json={"x": 1}))
    keys = [headers.get("idempotency-key") for _, headers in script.seen]
    assert len(keys) == 2 and keys[0] and keys[0] == keys[1]


def test_an_unreachable_server_is_a_connection_error() -> None:
    mesh = Client(f"http://127.0.0.1:{free_port()}", "k", retry=RetryPolicy(backoff=0.01))
    with mesh, pytest.raises(APIConnectionError):
        mesh.whoami()


def test_retry_after_reads_seconds_and_dates() -> None:
    assert retry_after("7") == 7.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert retry_after("soon") is None and retry_after(None) is None


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MESHGATE_URL", raising=False)
    with pytest.raises(ValueError, match="MESHGATE_URL"):
        Client(api_key="k")
    monkeypatch.setenv("MESHGATE_URL", "http://127.0.0.1:1/")
    monkeypatch.setenv("MESHGATE_API_KEY", "k")
    with Client() as mesh:
        assert mesh.base_url == "http://127.0.0.1:1"
