import signal
import threading
import time
from collections.abc import Callable, Iterator

import httpx

from tests.conftest import Server


def test_a_real_server_serves_and_authenticates(start_server: Callable[..., Server]) -> None:
    server = start_server()
    with server.client() as http:
        assert http.get("/healthz").json() == {"status": "ok"}
        assert http.get("/v1/admin/keys").status_code == 200
    with server.client(key="wrong") as http:
        assert http.get("/v1/admin/keys").status_code == 401
    # uvicorn drains, runs the shutdown, then re-raises SIGTERM as its exit status
    assert server.stop() in (0, -15)
    assert "Application shutdown complete" in server.log.read_text()


def test_sigterm_drains_in_flight_requests(start_server: Callable[..., Server]) -> None:
    server = start_server()
    first_chunk_sent = threading.Event()

    def slow_body() -> Iterator[bytes]:
        yield b'{"scopes": ["inference"],'
        first_chunk_sent.set()
        time.sleep(1.0)  # the server receives SIGTERM meanwhile
        yield b' "description": "in flight"}'

    result: dict[str, httpx.Response] = {}

    def upload() -> None:
        with server.client() as http:
            result["response"] = http.post(
                "/v1/admin/keys", content=slow_body(), headers={"content-type": "application/json"}
            )

    worker = threading.Thread(target=upload)
    worker.start()
    assert first_chunk_sent.wait(5)
    time.sleep(0.2)
    server.proc.send_signal(signal.SIGTERM)
    worker.join(10)
    assert result["response"].status_code == 201
    assert server.proc.wait(15) in (0, -15)
    log = server.log.read_text()
    assert "Waiting for connections to close" in log or "Shutting down" in log
    restarted = start_server(data_dir=server.log.parent)
    with restarted.client() as http:
        descriptions = [k["description"] for k in http.get("/v1/admin/keys").json()["keys"]]
    assert "in flight" in descriptions
