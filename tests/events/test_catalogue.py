"""The event catalogue is the contract: every ``meshgate.*`` event the platform writes, read back
through ``GET /v1/events``, is valid data of the payload class its type declares."""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import re
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

import meshgate
from meshgate.config import Settings
from meshgate.events.catalogue import (
    BREAKER_CLOSED,
    BREAKER_OPENED,
    CATALOGUE,
    PREDICTION_MADE,
    ROLLOUT_ADVANCED,
    ROLLOUT_ROLLED_BACK,
    PredictionMade,
)
from tests.conftest import app_client
from tests.economics.conftest import as_key, new_key, openai_client
from tests.models.fake_openai import FakeOpenAI, UpstreamLoop
from tests.training.helpers import finished

HI = [{"role": "user", "content": "hi"}]
PII = "Mail jane.doe@example.com please"
EVENT_TYPE = re.compile(r"^meshgate\.[a-z_]+\.[a-z_.]+$")
NOT_EVENT_TYPES = {
    # The record kind of a signed audit checkpoint (governance/chain.py), not a log event.
    "meshgate.audit.checkpoint",
}


@pytest.fixture(scope="module")
def upstreams() -> Iterator[UpstreamLoop]:
    loop = UpstreamLoop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def upstream(upstreams: UpstreamLoop) -> FakeOpenAI:
    return upstreams.fake("upstream")


@pytest.fixture(scope="module")
def failing(upstreams: UpstreamLoop) -> FakeOpenAI:
    return upstreams.fake("failing")


BREAKER_RESET = 0.2


def chat_model(name: str, upstream: FakeOpenAI) -> dict[str, Any]:
    provider = {"type": "openai", "base_url": upstream.base_url, "model": "up-1"}
    # Four failures open the breaker; it lets a trial through soon after.
    breaker = {"failures": 4, "reset_seconds": BREAKER_RESET}
    resilience = {"retries": 0, "breaker": breaker}
    version = {"version": "1", "provider": provider, "resilience": resilience}
    return {"name": name, "task": "chat", "versions": [version]}


@pytest.fixture
async def admin(
    make_settings: Callable[..., Settings], upstream: FakeOpenAI, failing: FakeOpenAI
) -> AsyncIterator[httpx.AsyncClient]:
    trainee = {
        "name": "trainee",
        "task": "classification",
        "trainer": {"entrypoint": "tests.training.trainers:boom"},
    }
    settings = make_settings(
        models=[chat_model("flaky", failing), trainee],
        monitoring={
            "alerts": {
                "interval_seconds": 0.05,
                "window_seconds": 60,
                "min_requests": 4,
                "error_rate": 0.5,
                "breaker_open": False,
            }
        },
    )
    async with app_client(settings) as client:
        yield client


async def all_events(admin: httpx.AsyncClient) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    after = 0
    while True:
        page = await admin.get("/v1/events", params={"after": after, "limit": 1000})
        assert page.status_code == 200, page.text
        events += page.json()["events"]
        if not page.json()["events"]:
            return events
        after = page.json()["next_after"]


async def wait_for_type(admin: httpx.AsyncClient, type_: str) -> None:
    for _ in range(200):
        found = await admin.get("/v1/events", params={"type": type_, "limit": 1})
        if found.json()["events"]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no {type_} event")


async def ok(response: Any, status: int = 200) -> dict[str, Any]:
    answer = await response
    assert answer.status_code == status, answer.text
    return answer.json() if answer.content else {}


async def test_every_producer_writes_data_its_declared_type_accepts(
    admin: httpx.AsyncClient, upstream: FakeOpenAI, failing: FakeOpenAI
) -> None:
    # Registry: a model, its version, its traffic.
    provider = {"type": "openai", "base_url": upstream.base_url, "model": "up-1"}
    await ok(admin.post("/v1/registry/models", json={"name": "cat", "task": "chat"}), 201)
    await ok(
        admin.post("/v1/registry/models/cat/versions", json={"version": "1", "provider": provider}),
        201,
    )
    await ok(admin.put("/v1/registry/models/cat/traffic", json={"split": {"1": 100}}))
    # Economics: a price, a soft budget crossed, a guardrail that logs.
    price = {"input_per_mtok": 0, "output_per_mtok": 1_000_000, "currency": "USD"}
    await ok(admin.put("/v1/registry/models/cat/versions/1/price", json=price))
    key_id, key = await new_key(admin, ["inference"])
    budget = {"amount": 100, "soft_at": 0.05, "hard": False}
    await ok(admin.put(f"/v1/budgets/key/{key_id}", json=budget))
    guardrails = {"guardrails": [{"check": "pii", "action": "log"}]}
    await ok(admin.put("/v1/registry/models/cat/guardrails", json=guardrails))
    # Predictions: plain, streamed, with feedback.
    client = openai_client(admin, key)
    reply = await client.chat.completions.create(
        model="cat", messages=[{"role": "user", "content": PII}]
    )
    stream = await client.chat.completions.create(model="cat", messages=HI, stream=True)
    async for _ in stream:
        pass
    assert reply.choices[0].message.content
    made = await admin.get("/v1/events", params={"type": PREDICTION_MADE.name})
    prediction_id = made.json()["events"][0]["data"]["prediction_id"]
    async with as_key(admin, key) as caller:
        await ok(caller.post(f"/v1/predictions/{prediction_id}/feedback", json={"label": "a"}), 201)
    # Flags.
    flag = {"variants": {"on": True, "off": False}, "default": "off"}
    await ok(admin.put("/v1/flags/dark-mode", json=flag))
    await ok(admin.put("/v1/flags/dark-mode", json={**flag, "default": "on"}))
    await ok(admin.delete("/v1/flags/dark-mode"), 204)
    # Context: a profile, a session with state and interactions, an erasure.
    profile = {"preferences": {"language": "de"}}
    await ok(admin.patch("/v1/context/users/u-1", json=profile), 201)
    session = await ok(admin.post("/v1/context/sessions", json={"user_id": "u-1"}), 201)
    sid = session["session_id"]
    await ok(admin.patch(f"/v1/context/sessions/{sid}", json={"state": {"step": 1}}))
    turn = {"role": "user", "content": "hello"}
    await ok(admin.post(f"/v1/context/sessions/{sid}/interactions", json=turn), 201)
    await ok(admin.delete("/v1/context/users/u-1"))
    # Datasets and training: a dataset built, a training that fails (it has no rows).
    dataset = await ok(admin.post("/v1/datasets", json={"model": "trainee"}), 202)
    await finished(admin, f"/v1/datasets/{dataset['id']}")
    body = {"dataset": dataset["id"]}
    job = await ok(admin.post("/v1/registry/models/trainee/train", json=body), 202)
    await finished(admin, f"/v1/jobs/{job['id']}")  # a process starts: allow it time
    # Monitoring: an error-rate alert fires, then resolves once calls succeed again; the
    # breaker opens, half-opens for a trial and closes.
    failing.fail_status = 500
    flaky = openai_client(admin, key)
    for _ in range(4):
        with pytest.raises(Exception):  # noqa: B017 (the upstream's 5xx, as the client maps it)
            await flaky.chat.completions.create(model="flaky", messages=HI)
    await wait_for_type(admin, "meshgate.alert.fired")
    await wait_for_type(admin, BREAKER_OPENED.name)
    failing.fail_status = None
    await asyncio.sleep(BREAKER_RESET + 0.1)
    for _ in range(6):
        await flaky.chat.completions.create(model="flaky", messages=HI)
    await wait_for_type(admin, "meshgate.alert.resolved")
    await wait_for_type(admin, BREAKER_CLOSED.name)
    # Rollouts last: their failing calls would fire an alert of their own.
    await rollouts(admin, provider)

    events = [e for e in await all_events(admin) if e["type"].startswith("meshgate.")]
    for event in events:
        # The API shows an event's (encrypted) personal part under data; it is not the payload.
        event["data"].pop("personal", None)
    problems = []
    for event in events:
        declared = CATALOGUE.get(event["type"])
        if declared is None:
            problems.append(f"{event['type']}: not in the catalogue")
            continue
        try:
            declared.parse(event["data"])
        except ValidationError as exc:
            problems.append(f"{event['type']}: {exc}")
    assert not problems, "\n".join(problems)
    assert {e["type"] for e in events} == set(CATALOGUE)

    # A chat call's event names the key that made it and its tenant.
    chats = [
        PredictionMade.model_validate(e["data"])
        for e in events
        if e["type"] == PREDICTION_MADE.name and e["data"]["model"] == "cat"
    ]
    assert len(chats) == 2
    assert {(p.key_id, p.tenant) for p in chats} == {(key_id, "default")}
    assert {p.stream for p in chats} == {None, "ok"}


async def rollouts(admin: httpx.AsyncClient, provider: dict[str, Any]) -> None:
    """Every rollout transition: by hand (paused, resumed, aborted, promoted) and by the
    controller (advanced, rolled_back), which reads the predictions the log holds."""
    await ok(admin.post("/v1/registry/models", json={"name": "rolled", "task": "chat"}), 201)
    for version in ("1", "2"):
        body = {"version": version, "provider": provider}
        await ok(admin.post("/v1/registry/models/rolled/versions", json=body), 201)
    url = "/v1/registry/models/rolled/rollouts"
    only_errors = {"max_p95_ratio": None, "min_accuracy_delta": None, "max_drift_psi": None}
    body = {
        "candidate": "2",
        "baseline": "1",
        "steps": [10, 50, 100],
        "interval_seconds": 0.1,
        "min_requests": 30,
        "analysis": only_errors,
    }
    by_hand = await ok(admin.post(url, json=body), 201)
    for action in ("pause", "resume", "abort"):
        await ok(admin.post(f"{url}/{by_hand['id']}/{action}"))
    watched = await ok(admin.post(url, json=body), 201)
    await predictions(admin, {"1": False, "2": False})
    await wait_for_type(admin, ROLLOUT_ADVANCED.name)
    await ok(admin.post(f"{url}/{watched['id']}/promote"))
    await ok(admin.post(url, json={**body, "candidate": "1", "baseline": "2"}), 201)
    await predictions(admin, {"1": True, "2": False})
    await wait_for_type(admin, ROLLOUT_ROLLED_BACK.name)


async def predictions(admin: httpx.AsyncClient, failing: dict[str, bool]) -> None:
    """40 calls of each version of ``rolled``, as the model service records them."""
    events = admin.app.state.services.events  # type: ignore[attr-defined]
    for n in range(40):
        for version, error in failing.items():
            made = PredictionMade(
                prediction_id=f"pred_rolled_{version}_{error}_{n}",
                tenant="default",
                model="rolled",
                version=version,
                task="chat",
                status="error" if error else "ok",
                shadow=False,
                latency_ms=12.0,
                trace_id=None,
                context_fields=[],
                inputs_hash="h",
            )
            data = PREDICTION_MADE.data(made)
            await events.publish(
                PREDICTION_MADE.name, tenant="default", subject="models/rolled", data=data
            )


def test_a_payload_class_refuses_what_it_does_not_declare() -> None:
    data = {
        "prediction_id": "p",
        "tenant": "default",
        "model": "m",
        "version": "1",
        "task": "chat",
        "status": "ok",
        "shadow": False,
        "latency_ms": 1.0,
        "trace_id": None,
        "context_fields": [],
        "inputs_hash": "h",
    }
    assert PREDICTION_MADE.data(PREDICTION_MADE.parse(data)) == data
    with pytest.raises(ValidationError):
        PREDICTION_MADE.parse({**data, "surprise": 1})
    with pytest.raises(ValidationError):
        PREDICTION_MADE.parse({k: v for k, v in data.items() if k != "model"})


def _string_constants(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def test_event_types_are_named_only_in_the_catalogue() -> None:
    """Producers and consumers import the type from the catalogue, never spell it out."""
    root = Path(meshgate.__file__).parent
    spelled = []
    for path in sorted(root.rglob("*.py")):
        if path == root / "events" / "catalogue.py":
            continue
        for line, value in _string_constants(path):
            if not EVENT_TYPE.match(value) or value in NOT_EVENT_TYPES:
                continue
            if _is_module_or_logger(value):
                continue
            spelled.append(f"{path.relative_to(root)}:{line}: {value}")
    assert not spelled, "\n".join(spelled)


def _is_module_or_logger(value: str) -> bool:
    """Logger names follow the module tree (meshgate.events.webhooks)."""
    try:
        return importlib.util.find_spec(value) is not None
    except ModuleNotFoundError:
        return False


async def test_the_audit_record_of_a_chat_call_names_the_key_that_made_it(
    admin: httpx.AsyncClient,
) -> None:
    key_id, key = await new_key(admin, ["inference"])
    await openai_client(admin, key).chat.completions.create(model="flaky", messages=HI)
    made = await admin.get("/v1/events", params={"type": PREDICTION_MADE.name})
    (event,) = made.json()["events"]
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        found = await admin.get("/v1/audit", params={"action": "prediction.made"})
        assert found.status_code == 200, found.text
        records = found.json()["records"]
        if records or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(0.05)
    (record,) = records
    assert record["actor"] == key_id and record["tenant"] == "default"
    assert record["details"]["event_id"] == event["id"]
