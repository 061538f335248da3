"""Rollouts and flag-chosen models end to end: a real Meshgate server, chat calls over HTTP,
and fake upstreams that are real HTTP servers.

v1 is healthy; v2 fails one call in twenty (5 %) and is rolled back by the controller at its
first step; v3 is healthy and goes through every step to 100 %, then is promoted. A candidate
whose answers users score lower (feedback through the API) is rolled back too.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_KEY, Server
from tests.models.fake_openai import FakeOpenAI, UpstreamLoop

MODEL = "/v1/registry/models/support"
ROLLOUTS = f"{MODEL}/rollouts"
QUICK = {"timeout_seconds": 5, "retries": 0}
ONLY_ERRORS = {"max_p95_ratio": None, "min_accuracy_delta": None, "max_drift_psi": None}

pytestmark = pytest.mark.timeout(180)


class Stack:
    def __init__(self, server: Server, fakes: dict[str, FakeOpenAI]):
        self.server = server
        self.fakes = fakes


def version(name: str, upstream: FakeOpenAI) -> dict[str, Any]:
    provider = {"type": "openai", "base_url": upstream.base_url, "model": f"up-{name}"}
    return {"version": name, "provider": provider, "resilience": QUICK}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    loop = UpstreamLoop()
    fakes = {name: loop.fake(name) for name in ("v1", "v2", "v3")}
    fakes["v2"].fail_every = 20
    limits = {f"MESHGATE_LIMITS__{k}": "10000000" for k in ("KEY_RPM", "TENANT_RPM")}
    server = Server(limits, tmp_path_factory.mktemp("rollouts-e2e"))
    try:
        with server.client() as admin:
            for name in ("support", "support-next"):
                made = admin.post("/v1/registry/models", json={"name": name, "task": "chat"})
                assert made.status_code == 201, made.text
            for name in ("1", "2", "3"):
                added = admin.post(f"{MODEL}/versions", json=version(name, fakes[f"v{name}"]))
                assert added.status_code == 201, added.text
            nxt = admin.post(
                "/v1/registry/models/support-next/versions", json=version("1", fakes["v3"])
            )
            assert nxt.status_code == 201, nxt.text
            assert admin.post("/v1/registry/models", json={"name": "graded"}).is_success
            for name, fake in (("a", "v1"), ("b", "v3")):
                graded = admin.post(
                    "/v1/registry/models/graded/versions", json=version(name, fakes[fake])
                )
                assert graded.status_code == 201, graded.text
            assert admin.put(
                "/v1/registry/models/graded/traffic", json={"split": {"a": 100}}
            ).is_success
            traffic = {"split": {"1": 100}, "sticky": "user"}
            assert admin.put(f"{MODEL}/traffic", json=traffic).status_code == 200
            assert admin.put(f"{MODEL}/aliases/production", json={"version": "1"}).status_code
        yield Stack(server, fakes)
    finally:
        server.stop()
        loop.close()


async def chat_many(url: str, n: int, model: str = "support") -> list[httpx.Response]:
    """``n`` chat calls, 16 at a time, without an end user (the split picks at random)."""
    body = {"model": model, "messages": [{"role": "user", "content": "hello"}]}
    limit = asyncio.Semaphore(16)
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as http:

        async def one() -> httpx.Response:
            async with limit:
                return await http.post("/v1/chat/completions", json=body)

        return list(await asyncio.gather(*(one() for _ in range(n))))


def drive(
    stack: Stack, rollout_id: str, done: Callable[[dict[str, Any]], bool], seconds: float = 60
) -> dict[str, Any]:
    """Chat in batches until the rollout is ``done``; returns it."""
    deadline = time.monotonic() + seconds
    with stack.server.client() as admin:
        while time.monotonic() < deadline:
            found: dict[str, Any] = admin.get(f"{ROLLOUTS}/{rollout_id}").json()
            if done(found):
                return found
            asyncio.run(chat_many(stack.server.url, 80))
    raise AssertionError(f"rollout {rollout_id} did not finish: {found}")


def finished(rollout: dict[str, Any]) -> bool:
    """Ended, and the traffic of its end set (that follows the state's write)."""
    return rollout["state"] != "progressing" and bool(rollout["traffic_applied"])


def test_a_failing_candidate_is_rolled_back_and_a_healthy_one_promoted(stack: Stack) -> None:
    admin = stack.server.client()
    body = {
        "candidate": "2",
        "baseline": "1",
        "steps": [50, 100],
        "interval_seconds": 0.5,
        "min_requests": 600,
        "analysis": ONLY_ERRORS,
    }
    made = admin.post(ROLLOUTS, json=body)
    assert made.status_code == 201, made.text
    assert admin.get(MODEL).json()["traffic"]["split"] == {"1": 50, "2": 50}
    rolled = drive(stack, made.json()["id"], finished)
    assert rolled["state"] == "rolled_back", rolled
    assert rolled["step"] == 0, "rolled back at the first step, before it had its 600 calls"
    errors = rolled["figures"]["checks"]["error_rate"]
    assert errors["worse"] is True and errors["difference"]["lower"] > 0
    assert rolled["figures"]["candidate"]["errors"] > 0
    assert rolled["figures"]["baseline"]["errors"] == 0
    assert admin.get(MODEL).json()["traffic"]["split"] == {"1": 100}
    served = asyncio.run(chat_many(stack.server.url, 40))
    assert {r.headers["x-model-version"] for r in served} == {"1"}, "traffic is back on v1"
    event = admin.get("/v1/events", params={"type": "meshgate.rollout.rolled_back"}).json()
    (rolled_back,) = event["events"]
    assert rolled_back["data"]["figures"]["checks"]["error_rate"]["worse"] is True
    audit = admin.get("/v1/audit", params={"action": "rollout.rolled_back"}).json()["records"]
    assert audit[0]["details"]["reason"] == "candidate worse: error_rate"

    body = {**body, "candidate": "3", "steps": [25, 50, 100], "min_requests": 60}
    made = admin.post(ROLLOUTS, json=body)
    assert made.status_code == 201, made.text
    promoted = drive(stack, made.json()["id"], finished)
    assert promoted["state"] == "promoted", promoted
    moves = [(h["transition"], h["weight"]) for h in promoted["steps_analysis"]]
    assert moves == [("started", 25), ("advanced", 50), ("promoted", 100)]
    model = admin.get(MODEL).json()
    assert model["traffic"]["split"] == {"3": 100} and model["aliases"]["production"] == "3"
    served = asyncio.run(chat_many(stack.server.url, 20))
    assert {r.headers["x-model-version"] for r in served} == {"3"}
    found = admin.get("/v1/events", params={"type": "meshgate.rollout.promoted"}).json()
    (event,) = found["events"]
    assert event["data"]["figures"]["candidate"]["errors"] == 0
    admin.close()


def test_a_flag_chooses_the_model_per_end_user(stack: Stack) -> None:
    with stack.server.client() as admin:
        flag = {
            "variants": {"current": "support", "next": "support-next", "off": "none"},
            "default": "current",
            "rules": [{"if": "attributes.tier == 'gold'", "variant": "next"}],
        }
        assert admin.put("/v1/flags/support-model", json=flag).status_code == 200
        admin.patch("/v1/context/users/gold-1", json={"attributes": {"tier": "gold"}})
        admin.patch("/v1/context/users/plain-1", json={"attributes": {"tier": "silver"}})
        body = {"model": "flag:support-model", "messages": [{"role": "user", "content": "hi"}]}

        def chat(user: str, model: str = "flag:support-model") -> httpx.Response:
            return admin.post(
                "/v1/chat/completions", json={**body, "model": model}, headers={"x-user-id": user}
            )

        gold = chat("gold-1")
        assert gold.status_code == 200, gold.text
        assert gold.json()["choices"][0]["message"]["content"].startswith("v3 says")
        assert gold.json()["model"] == "up-1", "the upstream got the chosen model's own name"
        plain = chat("plain-1")
        assert plain.status_code == 200, plain.text
        assert plain.headers["x-model-version"] in {"1", "3"}
        assert chat("gold-1").json()["choices"][0]["message"]["content"].startswith("v3 says")

        missing = chat("gold-1", "flag:no-such-flag")
        assert missing.status_code == 404
        assert missing.json()["error"]["param"] == "model"
        boolean = {"variants": {"on": True, "off": False}, "default": "on"}
        admin.put("/v1/flags/not-a-model", json=boolean)
        wrong = chat("gold-1", "flag:not-a-model")
        assert wrong.status_code == 400 and wrong.json()["error"]["param"] == "model"


async def graded_calls(url: str, n: int) -> None:
    """``n`` chat calls of ``graded``, each scored by a user: version b's answers half as
    well as a's."""
    body = {"model": "graded", "messages": [{"role": "user", "content": "grade me"}]}
    headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10) as http:

        async def one(i: int) -> None:
            answer = await http.post("/v1/chat/completions", json=body)
            assert answer.status_code == 200, answer.text
            good = answer.headers["x-model-version"] == "a" or i % 2 == 0
            prediction = answer.headers["x-prediction-id"]
            feedback = {"score": 1.0 if good else 0.0}
            sent = await http.post(f"/v1/predictions/{prediction}/feedback", json=feedback)
            assert sent.status_code == 201, sent.text

        await asyncio.gather(*(one(i) for i in range(n)))


def test_worse_accuracy_from_feedback_is_rolled_back(stack: Stack) -> None:
    with stack.server.client() as admin:
        body = {
            "candidate": "b",
            "baseline": "a",
            "steps": [50, 100],
            "interval_seconds": 0.5,
            "min_requests": 100_000,
            "analysis": {"max_p95_ratio": None, "max_drift_psi": None, "min_accuracy_delta": -0.05},
        }
        made = admin.post("/v1/registry/models/graded/rollouts", json=body)
        assert made.status_code == 201, made.text
        url = f"/v1/registry/models/graded/rollouts/{made.json()['id']}"
        deadline = time.monotonic() + 60
        while not finished(found := admin.get(url).json()) and time.monotonic() < deadline:
            asyncio.run(graded_calls(stack.server.url, 40))
        assert found["state"] == "rolled_back", found
        accuracy = found["figures"]["checks"]["accuracy"]
        assert accuracy["worse"] is True and accuracy["candidate"] < accuracy["baseline"]
        assert found["reason"] == "candidate worse: accuracy"
        assert admin.get("/v1/registry/models/graded").json()["traffic"]["split"] == {"a": 100}
