"""A real server for the CLI tests, and ``meshgate`` run as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import ADMIN_KEY, Server
from tests.models.fake_openai import FakeOpenAI, UpstreamLoop

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="package")
def upstream() -> Iterator[FakeOpenAI]:
    loop = UpstreamLoop()
    yield loop.fake("cli-upstream")
    loop.close()


class PatientServer(Server):
    """Waits longer for its start (the test machine is shared) and never outlives a failure."""

    def wait_ready(self, timeout: float = 240) -> None:
        try:
            super().wait_ready(timeout)
        except RuntimeError:
            self.stop()
            raise


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = PatientServer({}, tmp_path_factory.mktemp("cli") / "data")
    yield running
    running.stop()


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESHGATE_")}
    env.update({"COLUMNS": "250", "HOME": extra.pop("HOME", env.get("HOME", "/nonexistent"))})
    env.update(extra)
    return env


@pytest.fixture
def meshgate(server: Server, tmp_path: Path) -> Run:
    """``meshgate(*args)``: the installed command, with the server's URL and admin key set,
    run from an empty folder (it must not create anything there)."""

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "meshgate", *args],
            env=env
            or clean_env(MESHGATE_URL=server.url, MESHGATE_API_KEY=ADMIN_KEY, HOME=str(tmp_path)),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert not (tmp_path / "data").exists(), "the CLI created a data directory"
        return done

    return run
