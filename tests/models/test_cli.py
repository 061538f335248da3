"""``meshgate models list | register | traffic`` on a real store (the commands run in process)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from meshgate.cli.models import app
from tests.conftest import ADMIN_KEY, Server
from tests.models.fake_openai import FakeOpenAI


@pytest.fixture
def meshgate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MESHGATE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MESHGATE_ADMIN_KEY", ADMIN_KEY)
    monkeypatch.delenv("MESHGATE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


def test_register_traffic_and_list(tmp_path: Path, meshgate) -> None:  # type: ignore[no-untyped-def]
    declaration = {
        "name": "helpdesk",
        "task": "chat",
        "versions": [
            {"version": v, "provider": {"type": "openai", "base_url": "http://127.0.0.1:9/v1"}}
            for v in ("1", "2")
        ],
    }
    file = tmp_path / "helpdesk.yaml"
    file.write_text(yaml.safe_dump(declaration))
    registered = meshgate("register", str(file))
    assert registered.exit_code == 0, registered.output
    assert "registered helpdesk (default): 1, 2" in registered.output

    bad = meshgate("traffic", "helpdesk", "--split", "1=70")
    assert bad.exit_code == 2 and "sum to 100" in bad.output
    unknown = meshgate("traffic", "helpdesk", "--split", "1=50", "--split", "7=50")
    assert unknown.exit_code == 1 and "'7'" in unknown.output
    invalid = tmp_path / "invalid.yaml"
    invalid.write_text(yaml.safe_dump({**declaration, "task": "poetry"}))
    assert meshgate("register", str(invalid)).exit_code == 2

    moved = meshgate("traffic", "helpdesk", "--split", "1=80", "--split", "2=20", "--fallback", "1")
    assert moved.exit_code == 0, moved.output

    listed = meshgate("list", "--json")
    assert listed.exit_code == 0, listed.output
    [model] = json.loads(listed.output)
    assert model["task"] == "chat"
    assert model["traffic"]["split"] == {"1": 80, "2": 20} and model["traffic"]["fallback"] == ["1"]
    assert [v["registered_by"] for v in model["versions"]] == ["cli", "cli"]
    table = meshgate("list")
    assert "helpdesk" in table.output and "1:80" in table.output


def test_a_change_from_another_process_is_served_within_the_refresh_time(
    server: Server, primary: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MESHGATE_DATA_DIR", str(server.log.parent))
    monkeypatch.setenv("MESHGATE_ADMIN_KEY", ADMIN_KEY)
    monkeypatch.setenv("MESHGATE_KEY_PEPPER", "test-pepper")
    monkeypatch.delenv("MESHGATE_CONFIG", raising=False)
    versions = [
        {"version": v, "provider": {"type": "openai", "base_url": primary.base_url, "model": v}}
        for v in ("1", "2")
    ]
    with server.client() as http:
        assert http.post("/v1/registry/models", json={"name": "moving"}).status_code == 201
        for version in versions:
            created = http.post("/v1/registry/models/moving/versions", json=version)
            assert created.status_code == 201

        def served() -> str:
            body = {"model": "moving", "messages": [{"role": "user", "content": "x"}]}
            return str(http.post("/v1/chat/completions", json=body).headers["x-model-version"])

        assert served() == "2"  # no split yet: the newest version
        # The server process caches the model; this process changes the store under it.
        changed = CliRunner().invoke(app, ["traffic", "moving", "--split", "1=100"])
        assert changed.exit_code == 0, changed.output
        started = time.monotonic()
        while served() != "1":
            assert time.monotonic() - started < 3, "the change was not picked up"
            time.sleep(0.05)
