"""``meshgate keys | models | whoami`` over the API of a real server."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import yaml

from tests.cli.conftest import Run
from tests.conftest import Server
from tests.models.fake_openai import FakeOpenAI

# A real server starts first; the shared test machine can be slow to start one.
pytestmark = pytest.mark.timeout(600)


def test_keys_create_list_and_revoke(meshgate: Run, server: Server) -> None:
    created = meshgate("keys", "create", "--tenant", "acme", "--scope", "inference")
    assert created.returncode == 0, created.stderr
    key_id = created.stdout.split("id:")[1].split()[0]
    secret = created.stdout.split("key:")[1].split()[0]
    assert (
        httpx.get(server.url + "/v1/whoami", headers={"Authorization": f"Bearer {secret}"}).json()[
            "tenant"
        ]
        == "acme"
    )
    listed = meshgate("keys", "list")
    assert key_id in listed.stdout and secret not in listed.stdout
    assert meshgate("keys", "revoke", key_id).returncode == 0
    keys = {k["id"]: k for k in json.loads(meshgate("keys", "list", "--json").stdout)}
    assert keys[key_id]["revoked_at"] is not None and keys[key_id]["tenant"] == "acme"
    unknown = meshgate("keys", "revoke", "key_nope")
    assert unknown.returncode == 1 and "not found" in unknown.stderr
    bad = meshgate("keys", "create", "--scope", "superuser")
    assert bad.returncode == 1 and "unknown scopes" in bad.stderr
    me = json.loads(meshgate("whoami", "--json").stdout)
    assert me["scopes"] == ["admin"]


def test_register_change_traffic_and_see_it_served(
    meshgate: Run, server: Server, upstream: FakeOpenAI, tmp_path: Path
) -> None:
    declaration = {
        "name": "helpdesk",
        "task": "chat",
        "versions": [
            {
                "version": v,
                "provider": {"type": "openai", "base_url": upstream.base_url, "model": v},
            }
            for v in ("1", "2")
        ],
        "traffic": {"split": {"1": 100}, "fallback": ["2"]},
    }
    file = tmp_path / "helpdesk.yaml"
    file.write_text(yaml.safe_dump(declaration))
    registered = meshgate("models", "register", str(file))
    assert registered.returncode == 0, registered.stderr
    assert "registered helpdesk (default): 1, 2" in registered.stdout
    again = meshgate("models", "register", str(file))
    assert again.returncode == 0 and "no new versions" in again.stdout

    def served() -> str:
        with server.client() as http:
            body = {"model": "helpdesk", "messages": [{"role": "user", "content": "x"}]}
            return str(http.post("/v1/chat/completions", json=body).headers["x-model-version"])

    assert served() == "1"
    moved = meshgate("models", "traffic", "helpdesk", "--split", "2=100")
    assert moved.returncode == 0, moved.stderr
    assert "fallback 2" in moved.stdout  # a split change keeps the fallback
    assert served() == "2"

    bad = meshgate("models", "traffic", "helpdesk", "--split", "1=70")
    assert bad.returncode == 1 and "100" in bad.stderr
    unknown = meshgate("models", "traffic", "helpdesk", "--split", "1=50", "--split", "7=50")
    assert unknown.returncode == 1 and "7" in unknown.stderr
    assert meshgate("models", "traffic", "helpdesk").returncode == 2
    invalid = tmp_path / "invalid.yaml"
    invalid.write_text(yaml.safe_dump({**declaration, "task": "poetry"}))
    refused = meshgate("models", "register", str(invalid))
    assert refused.returncode == 2 and "task" in refused.stderr

    [model] = json.loads(meshgate("models", "list", "--json").stdout)
    assert model["traffic"]["split"] == {"2": 100} and model["traffic"]["fallback"] == ["2"]
    table = meshgate("models", "list")
    assert "helpdesk" in table.stdout and "2:100" in table.stdout
    assert "v1" not in meshgate("models", "show", "helpdesk").stderr
    history = json.loads(meshgate("models", "history", "helpdesk", "--json").stdout)
    # Registered twice (each sets the declared traffic), then moved once.
    assert [h["change"] for h in history].count("model.traffic.changed") == 3
