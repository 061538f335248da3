"""NATS JetStream (the event log) down at start, killed and frozen."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.conftest import Server
from tests.faults.conftest import Load, assert_unavailable, failing, sigterm, timed, wait_ready
from tests.faults.servers import NatsInstance


def event(i: int) -> dict[str, object]:
    return {"specversion": "1.0", "id": f"e{i}", "source": "/faults", "type": "com.example.t"}


def publish(http: httpx.Client, i: int) -> httpx.Response:
    return http.post("/v1/events", json=event(i))


def publish_acked(http: httpx.Client, i: int) -> bool:
    response = publish(http, i)
    assert response.status_code in (201, 503), response.text
    return response.status_code == 201


def stored_ids(http: httpx.Client) -> set[str]:
    ids: set[str] = set()
    after = 0
    while True:
        page = http.get("/v1/events", params={"after": after, "limit": 1000}).json()
        ids |= {e["id"] for e in page["events"] if e["source"] == "/faults"}
        if not page["events"]:
            return ids
        after = page["next_after"]


def test_nats_down_at_start_then_back(
    serve: Callable[..., Server], nats_instance: NatsInstance
) -> None:
    server = serve({"MESHGATE_EVENTS__URL": nats_instance.url})  # NATS is not running
    down = failing(server)
    assert set(down) == {"events"}
    assert str(nats_instance.port) not in str(down)
    with server.client() as http:
        assert http.get("/v1/whoami").status_code == 200  # needs no event log: goes on
        retry = {"Idempotency-Key": "first-try"}
        response, elapsed = timed(lambda: http.post("/v1/events", json=event(1), headers=retry))
        assert_unavailable(response, elapsed, str(nats_instance.port))

        nats_instance.start()
        wait_ready(server)
        # The 503 was not kept: the retry with the same key really publishes, once.
        retried = http.post("/v1/events", json=event(1), headers=retry)
        assert retried.status_code == 201 and "idempotent-replayed" not in retried.headers
        again = http.post("/v1/events", json=event(1), headers=retry)
        assert again.json() == retried.json() and again.headers["idempotent-replayed"]
        assert stored_ids(http) == {"e1"}
    sigterm(server)


def test_nats_killed_then_frozen_under_load(
    serve: Callable[..., Server], nats_instance: NatsInstance
) -> None:
    nats_instance.start()
    server = serve({"MESHGATE_EVENTS__URL": nats_instance.url})
    wait_ready(server)
    load = Load(server, publish_acked)
    with server.client() as http:
        while len(load.acked) < 5:
            pass
        nats_instance.kill()
        for i in range(3):
            assert_unavailable(*timed(lambda i=i: publish(http, 10_000 + i)))
            assert http.get("/v1/whoami").status_code == 200
        assert set(failing(server)) == {"events"}

        nats_instance.start()  # same store directory
        wait_ready(server)
        before = len(load.acked)
        while len(load.acked) < before + 5:
            pass
        acked = load.stop()
        assert {f"e{i}" for i in acked} <= stored_ids(http)  # no acknowledged event lost

        nats_instance.freeze()
        try:
            assert_unavailable(*timed(lambda: publish(http, 20_000)))
            assert http.get("/v1/whoami").status_code == 200
            sigterm(server)  # shuts down while NATS hangs
        finally:
            nats_instance.thaw()
