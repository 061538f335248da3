"""Where the CLI finds its server, and that it never makes state by accident."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.cli.conftest import Run, clean_env
from tests.conftest import ADMIN_KEY, Server

# A real server starts first; the shared test machine can be slow to start one.
pytestmark = pytest.mark.timeout(600)

ROOT = Path(__file__).resolve().parents[2]


def test_without_a_server_url_it_says_what_to_set(meshgate: Run, tmp_path: Path) -> None:
    for args in (["keys", "list"], ["models", "list"], ["audit", "verify"], ["events", "list"]):
        done = meshgate(*args, env=clean_env(HOME=str(tmp_path)))
        assert done.returncode == 2, (args, done.stderr)
        assert "MESHGATE_URL" in done.stderr and "profile" in done.stderr
    no_key = meshgate("whoami", env=clean_env(HOME=str(tmp_path), MESHGATE_URL="http://x:1"))
    assert no_key.returncode == 2 and "MESHGATE_API_KEY" in no_key.stderr


def test_offline_commands_need_an_existing_data_directory(meshgate: Run, tmp_path: Path) -> None:
    env = clean_env(HOME=str(tmp_path))
    for args in (
        ["audit", "verify", "--offline"],
        ["audit", "public-key", "--offline"],
        ["events", "replay", "--group", "g", "--after", "1", "--offline"],
    ):
        done = meshgate(*args, env=env)
        assert done.returncode == 2, (args, done.stderr)
        assert "MESHGATE_DATA_DIR" in done.stderr
    assert not any(tmp_path.iterdir()) or [p.name for p in tmp_path.iterdir()] == []


def test_a_profile_file_names_the_server(meshgate: Run, server: Server, tmp_path: Path) -> None:
    profiles = tmp_path / ".config" / "meshgate" / "profiles.yaml"
    profiles.parent.mkdir(parents=True)
    profiles.write_text(
        yaml.safe_dump(
            {
                "default": {"url": server.url, "api_key": ADMIN_KEY},
                "broken": {"url": server.url, "api_key": "mg_wrong"},
            }
        )
    )
    env = clean_env(HOME=str(tmp_path))
    assert "key_bootstrap_admin" in meshgate("whoami", env=env).stdout
    refused = meshgate("whoami", env={**env, "MESHGATE_PROFILE": "broken"})
    assert refused.returncode == 1 and "401" in refused.stderr
    missing = meshgate("whoami", env={**env, "MESHGATE_PROFILE": "nope"})
    assert missing.returncode == 2 and "broken" in missing.stderr
    # The environment wins over the default profile.
    wins = meshgate("whoami", env={**env, "MESHGATE_API_KEY": "mg_wrong"})
    assert wins.returncode == 1 and "401" in wins.stderr


def test_an_unreachable_server_is_named(meshgate: Run, tmp_path: Path) -> None:
    env = clean_env(MESHGATE_URL="http://127.0.0.1:9", MESHGATE_API_KEY="k")
    done = meshgate("keys", "list", env=env)
    assert done.returncode == 1 and "http://127.0.0.1:9" in done.stderr


def test_help_imports_only_what_it_needs() -> None:
    """``meshgate --help`` must start at once: no settings, SDK, app or rich loaded.

    (typer itself loads pydantic to read an unset flag of a group: that one is allowed.)
    """
    probe = (
        "import sys, runpy\n"
        "sys.argv = ['meshgate', '--help']\n"
        "try:\n    runpy.run_module('meshgate', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "heavy = [m for m in ('httpx', 'rich', 'meshgate.config', 'meshgate.app',"
        " 'yaml', 'orjson', 'asyncio') if m in sys.modules]\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    for args in ([], ["models"], ["events"], ["audit"], ["keys"]):
        code = probe.replace("'--help'", ", ".join(repr(a) for a in [*args, "--help"]))
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=60,
            env=clean_env(),
        )
        assert "Usage:" in done.stdout, done.stderr
        assert "HEAVY []" in done.stderr, (args, done.stderr)


def test_meshgate_is_on_the_path_after_the_documented_activate_step() -> None:
    """README: `source .venv/bin/activate` puts `meshgate` on the PATH."""
    readme = (ROOT / "README.md").read_text()
    assert "source .venv/bin/activate" in readme
    done = subprocess.run(
        ["bash", "-c", "source .venv/bin/activate && command -v meshgate && meshgate --help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(PATH="/usr/bin:/bin"),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(str(ROOT / ".venv" / "bin" / "meshgate"))
