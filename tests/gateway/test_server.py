from collections.abc import Callable

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
