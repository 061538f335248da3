"""PATCH /v1/registry/models/{name}/traffic is a JSON merge patch: what it leaves out stays.
``meshgate models traffic`` changes only what it is given, the same way."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import yaml
from typer.testing import CliRunner

from meshgate.cli.models import app
from tests.conftest import ADMIN_KEY

CHAT = {"name": "support-chat", "task": "chat"}
UPSTREAM = {"type": "openai", "base_url": "http://127.0.0.1:9/v1"}
POLICY = {"split": {"1": 100}, "shadow": ["3"], "sticky": "session", "fallback": ["2"]}
MERGE = {"content-type": "application/merge-patch+json"}


async def with_three_versions(client: httpx.AsyncClient) -> None:
    assert (await client.post("/v1/registry/models", json=CHAT)).status_code == 201
    for v in ("1", "2", "3"):
        added = await client.post(
            "/v1/registry/models/support-chat/versions", json={"version": v, "provider": UPSTREAM}
        )
        assert added.status_code == 201, added.text
    put = await client.put("/v1/registry/models/support-chat/traffic", json=POLICY)
    assert put.status_code == 200, put.text


async def traffic(client: httpx.AsyncClient) -> dict:
    return (await client.get("/v1/registry/models/support-chat")).json()["traffic"]


async def test_a_split_change_keeps_fallback_shadows_and_stickiness(
    client: httpx.AsyncClient,
) -> None:
    await with_three_versions(client)
    patched = await client.patch(
        "/v1/registry/models/support-chat/traffic",
        content=json.dumps({"split": {"1": 90, "2": 10}}),
        headers=MERGE,
    )
    assert patched.status_code == 200, patched.text
    expected = {**POLICY, "split": {"1": 90, "2": 10}}
    assert patched.json() == expected and await traffic(client) == expected

    # null removes a member: version 1 leaves the split, shadows go back to none.
    removed = await client.patch(
        "/v1/registry/models/support-chat/traffic",
        json={"split": {"1": None, "2": 100}, "shadow": None},
    )
    assert removed.status_code == 200, removed.text
    assert await traffic(client) == {**POLICY, "split": {"2": 100}, "shadow": []}


async def test_a_patch_leaving_an_invalid_policy_changes_nothing(
    client: httpx.AsyncClient,
) -> None:
    await with_three_versions(client)
    for patch, status in (
        ({"split": {"2": 10}}, 422),  # 100 + 10
        ({"sticky": "sometimes"}, 422),
        ({"fallback": ["9"]}, 422),  # not a version of the model
        ({"unknown": 1}, 422),
    ):
        answer = await client.patch("/v1/registry/models/support-chat/traffic", json=patch)
        assert answer.status_code in (status, 409), (patch, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        assert await traffic(client) == POLICY
    missing = await client.patch("/v1/registry/models/nope/traffic", json={"sticky": "none"})
    assert missing.status_code == 404


def test_the_cli_changes_only_what_it_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESHGATE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MESHGATE_ADMIN_KEY", ADMIN_KEY)
    monkeypatch.delenv("MESHGATE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    declaration = {
        **CHAT,
        "versions": [{"version": v, "provider": UPSTREAM} for v in ("1", "2")],
        "traffic": {"split": {"1": 100}, "fallback": ["2"], "sticky": "none"},
    }
    file = tmp_path / "chat.yaml"
    file.write_text(yaml.safe_dump(declaration))
    runner = CliRunner()
    assert runner.invoke(app, ["register", str(file)]).exit_code == 0
    moved = runner.invoke(app, ["traffic", "support-chat", "--split", "1=50", "--split", "2=50"])
    assert moved.exit_code == 0, moved.output
    listed = runner.invoke(app, ["list", "--json"])
    [model] = json.loads(listed.output)
    assert model["traffic"] == {
        "split": {"1": 50, "2": 50},
        "shadow": [],
        "sticky": "none",
        "fallback": ["2"],
    }
    runner.invoke(app, ["traffic", "support-chat", "--split", "2=100"])
    [model] = json.loads(runner.invoke(app, ["list", "--json"]).output)
    assert model["traffic"]["split"] == {"2": 100} and model["traffic"]["fallback"] == ["2"]
