"""With the event log (NATS) and the outbox (PostgreSQL) both down, an inference is refused
before the upstream is called: a prediction that cannot be recorded is not made.

The first call after the outage finds it out the hard way (the upstream answers, recording the
prediction fails: 503); from then on each call is a 503 with Retry-After at once, the upstream
untouched. Once the outbox is back, calls are answered again within the relay's round, and
their events reach the log when it is back too.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from tests.conftest import Server
from tests.faults.conftest import BOUND, SLACK, wait_ready
from tests.faults.servers import NatsInstance, PostgresInstance
from tests.models.fake_openai import FakeOpenAI, UpstreamLoop

CHAT = {"model": "talk", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def upstream() -> Iterator[FakeOpenAI]:
    loop = UpstreamLoop()
    yield loop.fake("sink")
    loop.close()


def test_an_inference_is_refused_up_front_while_no_event_can_be_kept(
    serve: Callable[..., Server],
    nats_instance: NatsInstance,
    postgres_instance: PostgresInstance,
    upstream: FakeOpenAI,
) -> None:
    nats_instance.start()
    postgres_instance.start()
    server = serve(
        {
            "MESHGATE_EVENTS__URL": nats_instance.url,
            "MESHGATE_DATABASE_URL": postgres_instance.url,
            # The key stays known while PostgreSQL is down: the refusal under test is the
            # event sink's, not authentication's.
            "MESHGATE_AUTH_CACHE_TTL_SECONDS": "300",
        }
    )
    wait_ready(server)
    with server.client() as http:
        assert http.post("/v1/registry/models", json={"name": "talk"}).status_code == 201
        version = {"version": "v1", "provider": {"type": "openai", "base_url": upstream.base_url}}
        assert http.post("/v1/registry/models/talk/versions", json=version).status_code == 201
        assert http.post("/v1/chat/completions", json=CHAT).status_code == 200
        assert upstream.calls() == 1

        nats_instance.kill()
        postgres_instance.kill()
        # The first call learns that neither the log nor the outbox takes its event.
        first = http.post("/v1/chat/completions", json=CHAT)
        assert first.status_code == 503, first.text
        called = upstream.calls()

        for _ in range(5):
            started = time.monotonic()
            refused = http.post("/v1/chat/completions", json=CHAT)
            elapsed = time.monotonic() - started
            assert refused.status_code == 503, refused.text
            assert refused.headers["retry-after"].isdigit()
            assert "cannot be recorded" in refused.json()["error"]["message"]
            assert elapsed < BOUND, f"refused after {elapsed:.2f} s"
        assert upstream.calls() == called, "the upstream was called for a refused inference"

        postgres_instance.start()  # the outbox is back, the log still down
        deadline = time.monotonic() + 10 + SLACK
        while (answer := http.post("/v1/chat/completions", json=CHAT)).status_code != 200:
            assert time.monotonic() < deadline, answer.text
            time.sleep(0.2)
        assert upstream.calls() == called + 1
        prediction = answer.headers["x-prediction-id"]

        nats_instance.start()  # the relay appends the kept event
        deadline = time.monotonic() + 10 + SLACK
        while prediction not in predictions(http):
            assert time.monotonic() < deadline, "the kept prediction never reached the log"
            time.sleep(0.2)


def predictions(http: httpx.Client) -> set[str]:
    page = http.get("/v1/events", params={"type": "meshgate.prediction.made", "limit": 1000})
    if page.status_code != 200:
        return set()
    return {e["data"]["prediction_id"] for e in page.json()["events"]}
