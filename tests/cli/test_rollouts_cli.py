"""``meshgate rollouts start | status | pause | resume | promote | abort`` over the API of a
real server."""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import Run
from tests.conftest import Server
from tests.models.fake_openai import FakeOpenAI

pytestmark = pytest.mark.timeout(600)


def test_start_follow_and_finish_rollouts(
    meshgate: Run, server: Server, upstream: FakeOpenAI
) -> None:
    with server.client() as admin:
        assert admin.post("/v1/registry/models", json={"name": "faq", "task": "chat"}).is_success
        for version in ("1", "2"):
            provider = {"type": "openai", "base_url": upstream.base_url, "model": version}
            body = {"version": version, "provider": provider}
            assert admin.post("/v1/registry/models/faq/versions", json=body).is_success
        assert admin.put("/v1/registry/models/faq/traffic", json={"split": {"1": 100}}).is_success

    started = meshgate(
        "rollouts", "start", "faq", "--candidate", "2", "--baseline", "1",
        "--steps", "10,50,100", "--interval", "3600", "--json",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    rollout = json.loads(started.stdout)
    assert (rollout["state"], rollout["weight"], rollout["steps"]) == (
        "progressing",
        10,
        [10, 50, 100],
    )

    shown = meshgate("rollouts", "status", "faq", rollout["id"])
    assert shown.returncode == 0, shown.stderr
    assert "progressing" in shown.stdout and "10% of traffic" in shown.stdout
    listed = meshgate("rollouts", "status", "faq")
    assert rollout["id"] in listed.stdout
    assert meshgate("rollouts", "pause", "faq", rollout["id"]).returncode == 0
    assert meshgate("rollouts", "resume", "faq", rollout["id"]).returncode == 0

    second = meshgate("rollouts", "start", "faq", "--candidate", "2", "--baseline", "1")
    assert second.returncode == 1 and "running" in second.stderr, "one running per model"
    aborted = meshgate("rollouts", "abort", "faq", rollout["id"], "--json")
    assert json.loads(aborted.stdout)["state"] == "aborted"
    with server.client() as admin:
        assert admin.get("/v1/registry/models/faq").json()["traffic"]["split"] == {"1": 100}

    again = meshgate("rollouts", "start", "faq", "--candidate", "2", "--baseline", "1", "--json")
    promoted = meshgate("rollouts", "promote", "faq", json.loads(again.stdout)["id"])
    assert promoted.returncode == 0 and "promoted" in promoted.stdout
    with server.client() as admin:
        model = admin.get("/v1/registry/models/faq").json()
        assert model["aliases"]["production"] == "2" and model["traffic"]["split"] == {"2": 100}

    bad = meshgate(
        "rollouts", "start", "faq", "--candidate", "2", "--baseline", "1", "--steps", "50,25"
    )
    assert bad.returncode == 1 and "steps" in bad.stderr
    worse = meshgate(
        "rollouts", "start", "faq", "--candidate", "2", "--baseline", "1", "--steps", "a"
    )
    assert worse.returncode == 2 and "--steps" in worse.stderr
