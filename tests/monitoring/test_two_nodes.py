"""Two real ``meshgate serve`` processes on PostgreSQL, Redis and NATS, demo models on: every
figure comes from the durable log or the shared SQL store, so both nodes show the same.

Predictions are served by both nodes and their feedback sent to the other node; both nodes'
``GET /v1/monitoring/models/{name}`` and ``GET /v1/slo`` agree within 2 seconds; an error-rate
alert fires once (one ``meshgate.alert.fired`` event, one webhook delivery to a real receiver);
a circuit breaker opened on one node only shows on both and fires one breaker alert; each
prediction is in the audit trail once, under the key that made it; a restarted node shows the
figures it showed before it stopped; and the breaker alert resolves once the node that had it
open stops.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.conftest import PatientServer
from tests.conftest import Server
from tests.events.conftest import drop_nats_stream
from tests.models.fake_openai import FakeOpenAI, UpstreamLoop
from tests.scaleout.cluster import WebhookReceiver, shared_secrets

pytestmark = pytest.mark.timeout(600)  # three server starts on a shared, busy machine
CONVERGED_WITHIN = 2.0
IRIS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]


@pytest.fixture
def upstream() -> Iterator[FakeOpenAI]:
    loop = UpstreamLoop()
    yield loop.fake("demo")
    loop.close()


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    hook = WebhookReceiver()
    yield hook
    hook.stop()


def iris(http: httpx.Client, row: list[float], user: str) -> tuple[str, int]:
    body = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": row}]}
    answer = http.post("/v2/models/iris/infer", json=body, headers={"x-user-id": user})
    assert answer.status_code == 200, answer.text
    label = next(o for o in answer.json()["outputs"] if o["name"] == "label")["data"][0]
    return answer.headers["x-prediction-id"], int(label)


def chat(http: httpx.Client) -> int:
    body = {"model": "demo-chat", "messages": [{"role": "user", "content": "hello"}]}
    return http.post("/v1/chat/completions", json=body).status_code


def same_everywhere(
    nodes: list[Server], path: str, key: str, ready: Callable[[Any], bool], within: float = 10
) -> tuple[Any, float]:
    """The answer once every node gives the same one and ``ready`` accepts it; and how long
    that took."""
    started = time.monotonic()
    answers: list[Any] = []
    while time.monotonic() - started < within:
        answers = []
        for node in nodes:
            with node.client(key) as http:
                got = http.get(path)
                answers.append(got.json() if got.status_code == 200 else got.status_code)
        if all(a == answers[0] for a in answers) and ready(answers[0]):
            return answers[0], time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"{path} never agreed: {answers}")


def fired_events(node: Server) -> list[dict[str, Any]]:
    return alert_events(node, "meshgate.alert.fired")


def resolved_events(node: Server) -> list[dict[str, Any]]:
    return alert_events(node, "meshgate.alert.resolved")


def alert_events(node: Server, type_: str) -> list[dict[str, Any]]:
    with node.client() as admin:
        found = admin.get("/v1/events", params={"type": type_})
    assert found.status_code == 200, found.text
    return list(found.json()["events"])


def totals(report: Any) -> tuple[int, int, int]:
    """(requests, errors, feedback) over every version of a model report."""
    if not isinstance(report, dict):
        return (0, 0, 0)
    versions = report["versions"]
    return (
        sum(v["requests"] for v in versions),
        sum(v["errors"] for v in versions),
        sum(v["accuracy"]["feedback"] for v in versions),
    )


def test_two_nodes_show_the_same_figures_fire_one_alert_and_survive_a_restart(
    postgres_url: str,
    redis_url: str,
    nats_url: str,
    namespace: str,
    tmp_path: Path,
    upstream: FakeOpenAI,
    receiver: WebhookReceiver,
) -> None:
    env = {
        **shared_secrets(),
        "MESHGATE_DATABASE_URL": postgres_url,
        "MESHGATE_REDIS_URL": redis_url,
        "MESHGATE_EVENTS__URL": nats_url,
        "MESHGATE_NAMESPACE": namespace,
        "MESHGATE_DEMO": "true",
        "MESHGATE_BACKEND_TIMEOUT_SECONDS": "10",  # a busy machine answers slowly
        "MESHGATE_DEMO_CHAT_URL": upstream.base_url,
        "MESHGATE_MONITORING__SNAPSHOT_SECONDS": "1",
        "MESHGATE_MONITORING__ALERTS__INTERVAL_SECONDS": "0.2",
        "MESHGATE_MONITORING__ALERTS__MIN_REQUESTS": "10",
        "MESHGATE_MONITORING__ALERTS__ERROR_RATE": "0.3",
        # The open breaker's report holds through the restart below however slow it is (its
        # lapse is tested in test_breakers.py); the breaker's own reset window is 30 s.
        "MESHGATE_MONITORING__ALERTS__BREAKER_GRACE_SECONDS": "600",
        "MESHGATE_MONITORING__ALERTS__WEBHOOKS": json.dumps(
            [{"url": receiver.url, "secret": "whsec-two-nodes-0123456789"}]
        ),
    }
    nodes: list[Server] = []
    try:
        # Both started at once, on one database, one Redis and one NATS stream.
        with ThreadPoolExecutor(2) as pool:
            starting = [pool.submit(PatientServer, env, tmp_path / name) for name in ("a", "b")]
            # Every node that did start is kept (and stopped below), even when the other failed.
            nodes += [s.result() for s in starting if s.exception() is None]
            for s in starting:
                s.result()
        with nodes[0].client() as admin:
            made = admin.post(
                "/v1/admin/keys", json={"scopes": ["inference", "audit:read", "users:assert"]}
            )
            assert made.status_code == 201, made.text
        key_id, key = made.json()["id"], made.json()["key"]

        # Predictions on both nodes; each one's feedback goes to the other node.
        served: list[tuple[int, str, int]] = []
        for i in range(12):
            with nodes[i % 2].client(key) as http:
                served.append((i % 2, *iris(http, IRIS[i % 3], f"user-{i}")))
        for n, (node, prediction_id, label) in enumerate(served[:8]):
            truth = label if n % 4 else label + 1  # two in eight wrong
            with nodes[1 - node].client(key) as http:
                sent = http.post(f"/v1/predictions/{prediction_id}/feedback", json={"label": truth})
                assert sent.status_code == 201, sent.text
        report, took = same_everywhere(
            nodes, "/v1/monitoring/models/iris", key, lambda r: totals(r) == (12, 0, 8)
        )
        assert took < CONVERGED_WITHIN, took
        right = sum(v["accuracy"]["value"] * v["accuracy"]["feedback"] for v in report["versions"])
        assert round(right) == 6

        # Chat: four answered, then the upstream fails; the error rate crosses 30%. The first
        # node sees five failures in a row, which open its breaker (the demo's opens at five);
        # the second sees four, and its breaker stays closed.
        for i in range(4):
            with nodes[i % 2].client(key) as http:
                assert chat(http) == 200
        upstream.fail_status = 500
        for i in range(9):
            with nodes[i % 2].client(key) as http:
                assert chat(http) >= 500
        report, took = same_everywhere(
            nodes,
            "/v1/monitoring/models/demo-chat",
            key,
            lambda r: totals(r) == (13, 9, 0) and len(r["alerts"]) == 2,
        )
        assert took < CONVERGED_WITHIN + 1  # the alerts wait for an evaluation round
        alerts = {a["rule"]: a for a in report["alerts"]}
        assert set(alerts) == {"error_rate", "breaker_open"}
        assert "open on one node" in alerts["breaker_open"]["message"]
        (version,) = report["versions"]
        assert version["breaker"]["state"] == "open"
        assert [n["state"] for n in version["breaker"]["nodes"]] == ["open"]
        # Both nodes keep evaluating; only the leaseholder acts, and it acted once per alert.
        time.sleep(1.5)
        fired = fired_events(nodes[1])
        assert sorted(e["data"]["id"] for e in fired) == sorted(a["id"] for a in alerts.values())
        assert receiver.received == {e["id"]: 1 for e in fired}

        # The SLO report is the cluster's: 12 + 13 calls of this tenant, on either node.
        _, took = same_everywhere(nodes, "/v1/slo", key, lambda r: r["requests"] == 25)
        assert took < CONVERGED_WITHIN + 1  # each node writes its buckets every second

        # Each prediction is in the audit trail once, under the key that made it.
        def references() -> list[Any]:
            with nodes[0].client() as admin:
                found = admin.get(
                    "/v1/audit",
                    params={"actor": key_id, "action": "prediction.made", "limit": 1000},
                )
            return list(found.json()["records"])

        deadline = time.monotonic() + 10
        while len(references()) < 25 and time.monotonic() < deadline:
            time.sleep(0.1)
        refs = references()
        assert len(refs) == 25 and len({r["details"]["event_id"] for r in refs}) == 25
        models = sorted({r["resource"] for r in refs})
        assert models == ["models/demo-chat", "models/iris"]

        # A node restarted shows the same figures as before it stopped, the other node's
        # open breaker included.
        before = {
            name: same_everywhere(nodes, f"/v1/monitoring/models/{name}", key, bool)[0]
            for name in ("iris", "demo-chat")
        }
        nodes[1].stop()
        nodes[1] = PatientServer(env, tmp_path / "b")
        for name, figures in before.items():
            after, _ = same_everywhere(nodes, f"/v1/monitoring/models/{name}", key, bool)
            assert after == figures
        # The open alerts are not fired again by whichever node evaluates now.
        time.sleep(1.0)
        assert fired_events(nodes[1]) == fired and receiver.received == {e["id"]: 1 for e in fired}

        # The node with the open breaker stops: it withdraws its report, and the other node
        # (the leaseholder now) resolves the breaker alert, once.
        nodes[0].stop()
        deadline = time.monotonic() + 30
        while not resolved_events(nodes[1]) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)
        (resolved,) = resolved_events(nodes[1])
        assert resolved["data"]["id"] == alerts["breaker_open"]["id"]
        with nodes[1].client(key) as http:
            report = http.get("/v1/monitoring/models/demo-chat").json()
        assert report["versions"][0]["breaker"] == {"state": "closed", "nodes": []}
        assert [a["rule"] for a in report["alerts"]] == ["error_rate"]
        deadline = time.monotonic() + 10
        while resolved["id"] not in receiver.received and time.monotonic() < deadline:
            time.sleep(0.1)
        assert receiver.received == {e["id"]: 1 for e in [*fired, resolved]}
    finally:
        for node in nodes:
            node.stop()
        asyncio.run(drop_nats_stream(nats_url, namespace))
