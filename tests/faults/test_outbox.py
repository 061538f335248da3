"""An answer tells the truth while the event log (NATS) is down: writes and their events.

A context write whose event the log cannot take keeps the event in the outbox (the SQL store)
and is acknowledged; the relay appends the event once NATS is back, from this process or the
next one. So no write is answered with an error after it happened, and no acknowledged write
is without its event.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from tests.conftest import Server
from tests.faults.conftest import BOUND, SLACK, sigterm, wait_ready
from tests.faults.servers import NatsInstance

PATCH = {"content-type": "application/merge-patch+json"}
USER = "u-outbox"
UPDATED = "meshgate.context.updated"


def write(http: httpx.Client, i: int) -> tuple[int, float]:
    started = time.monotonic()
    response = http.patch(
        f"/v1/context/users/{USER}", json={"attributes": {f"k{i}": i}}, headers=PATCH
    )
    return response.status_code, time.monotonic() - started


def reported(http: httpx.Client) -> set[str]:
    """The attribute names the log's context.updated events report as changed."""
    changed: set[str] = set()
    after = 0
    while True:
        page = http.get("/v1/events", params={"after": after, "limit": 1000, "type": UPDATED})
        assert page.status_code == 200, page.text
        events = page.json()["events"]
        if not events:
            return changed
        for event in events:
            changed |= set(event["data"].get("changed") or [])
        after = page.json()["next_after"]


IRIS = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [5, 3, 1, 0]}]}


def event_ids(http: httpx.Client, type: str) -> set[str]:
    page = http.get("/v1/events", params={"type": type, "limit": 1000})
    assert page.status_code == 200, page.text
    return {e["id"] for e in page.json()["events"]}


def test_writes_while_nats_is_down_are_acknowledged_and_their_events_follow(
    serve: Callable[..., Server], nats_instance: NatsInstance
) -> None:
    nats_instance.start()
    env = {"MESHGATE_EVENTS__URL": nats_instance.url, "MESHGATE_DEMO": "true"}
    server = serve(env)
    wait_ready(server)
    answers: dict[int, int] = {}
    with server.client() as http:
        for i in range(5):
            answers[i], _ = write(http, i)

        # Frozen: an append waits out the bound. Only the first write waits; the next ones
        # queue behind its kept event at once.
        nats_instance.freeze()
        outage: list[float] = []
        try:
            for i in range(5, 10):
                answers[i], elapsed = write(http, i)
                outage.append(elapsed)
        finally:
            nats_instance.thaw()
        assert outage[0] < BOUND + SLACK, outage
        assert sum(outage[1:]) < 2 * BOUND, outage  # each would wait the bound otherwise

        nats_instance.kill()  # mid-load: the next writes find the log gone
        for i in range(10, 15):
            answers[i], elapsed = write(http, i)
            assert elapsed < BOUND + SLACK, f"write {i} answered after {elapsed:.2f} s"
        assert all(status in (200, 201) for status in answers.values()), answers
        profile = http.get(f"/v1/context/users/{USER}").json()
        assert set(profile["attributes"]) == {f"k{i}" for i in answers}
        # An inference answers once the model has: its prediction is recorded all the same.
        inferred = http.post("/v2/models/iris/infer", json=IRIS)
        assert inferred.status_code == 200, inferred.text
        prediction = inferred.headers["x-prediction-id"]
        feedback = http.post(f"/v1/predictions/{prediction}/feedback", json={"label": "setosa"})
        assert feedback.status_code == 201, feedback.text

    # The process stops with the events still kept; the next one (same data directory, so
    # the same SQL store) appends them once NATS is back.
    sigterm(server)
    nats_instance.start()  # same store directory: what NATS acknowledged is still there
    server = serve(env)
    wait_ready(server)
    with server.client() as http:
        for i in range(15, 18):
            answers[i], _ = write(http, i)
        expected = {f"attributes.k{i}" for i in answers}
        deadline = time.monotonic() + 10 + SLACK
        while not expected <= (found := reported(http)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert expected <= found, f"events missing for {sorted(expected - found)}"
        assert prediction in event_ids(http, "meshgate.prediction.made")
        assert feedback.json()["id"] in event_ids(http, "meshgate.prediction.feedback")
