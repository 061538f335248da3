"""Every runnable block of the README and of each page under docs/, as written, against a real
server started as ``make run`` starts it (docs/writing-docs.md is the contract).

One server per module: the project's ``.venv/bin/meshgate serve`` with ``MESHGATE_DEMO=true``
on a fresh data directory and no admin key set, so the blocks use the bootstrap key it prints,
as a new user does. ``MESHGATE_DEMO_CHAT_URL`` names a fake OpenAI upstream, so the README's
``demo-chat`` exists. A page's blocks run in order in one folder (the README's in the project
folder, the others' in a fresh one with the ``.venv`` activated); what a shell block exports
reaches the later blocks. A failing block fails its page's test, naming the block.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from tests.docs.blocks import ROOT, Block, blocks_of, pages
from tests.models.fake_openai import FakeOpenAI, UpstreamLoop

# The first start trains the demo models; the shared test machine can be slow.
pytestmark = pytest.mark.timeout(600)

VENV_BIN = ROOT / ".venv" / "bin"
BLOCK_TIMEOUT = 180  # a block of a dozen CLI calls on a machine shared by several test runs
DOCUMENTED = re.compile(r"\b(localhost|127\.0\.0\.1):8080\b")
BOOTSTRAP = re.compile(rb"^\s+(mg_\S+)\s*$", re.M)


@dataclass
class DocServer:
    port: int
    data_dir: Path
    admin_key: str
    log: Path


def start(data_dir: Path, upstream: FakeOpenAI) -> tuple[subprocess.Popen[bytes], DocServer]:
    port = free_port()
    log = data_dir.parent / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESHGATE_")}
    env.update(
        MESHGATE_DEMO="true",  # what `make run` sets
        MESHGATE_PORT=str(port),
        MESHGATE_DATA_DIR=str(data_dir),
        # The README's chat model, on a fake upstream on loopback, allow-listed as it says.
        MESHGATE_DEMO_CHAT_URL=upstream.base_url,
        MESHGATE_SECURITY__EGRESS_ALLOW='["127.0.0.1"]',
    )
    proc = subprocess.Popen(
        [str(VENV_BIN / "meshgate"), "serve"],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    else:
        proc.kill()
        proc.wait()
        raise RuntimeError(f"server did not start: {log.read_text()[-3000:]}")
    printed = BOOTSTRAP.search(log.read_bytes())
    if printed is None:
        proc.kill()
        proc.wait()
        raise RuntimeError(f"no bootstrap key printed: {log.read_text()[:2000]}")
    return proc, DocServer(port, data_dir, printed.group(1).decode(), log)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DocServer]:
    loop = UpstreamLoop()
    upstream = loop.fake("docs-upstream")
    proc, running = start(tmp_path_factory.mktemp("docs-server") / "data", upstream)
    yield running
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    loop.close()


def page_env(server: DocServer, home: Path, activated: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESHGATE_")}
    env.update(
        HOME=str(home),  # no profile of the machine's user leaks in
        COLUMNS="200",
        MESHGATE_ADMIN_KEY=server.admin_key,
        MESHGATE_DATA_DIR=str(server.data_dir),
        MESHGATE_PORT=str(server.port),
    )
    # Not on the PATH unless the page activates it (the README does, as a user must), even
    # when the shell running the tests has it active.
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and Path(p) != VENV_BIN]
    env.pop("VIRTUAL_ENV", None)
    if activated:  # what `source .venv/bin/activate` does
        env["VIRTUAL_ENV"] = str(ROOT / ".venv")
        path.insert(0, str(VENV_BIN))
    env["PATH"] = os.pathsep.join(path)
    return env


def as_run(block: Block, port: int) -> str:
    return DOCUMENTED.sub(lambda m: f"{m.group(1)}:{port}", block.code)


def run_shell(code: str, folder: Path, env: dict[str, str], state: Path) -> dict[str, str]:
    """Runs one shell block; returns the environment it leaves exported (read from state)."""
    script = f"set -euo pipefail\n{code}\nenv -0 > {str(state)!r}\n"
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=folder,
        env=env,
        capture_output=True,
        timeout=BLOCK_TIMEOUT,
    )
    if done.returncode != 0:
        raise BlockFailed(done.returncode, done.stdout, done.stderr)
    pairs = (item.split("=", 1) for item in state.read_bytes().decode().split("\0") if item)
    return {name: value for name, value in pairs if name not in {"_", "SHLVL", "PWD", "OLDPWD"}}


def run_python(code: str, folder: Path, env: dict[str, str]) -> None:
    """Runs one Python block with the ``python`` the page's PATH finds, as a user would."""
    python = shutil.which("python", path=env["PATH"]) or "python"
    done = subprocess.run(
        [python, "-c", code],
        cwd=folder,
        env=env,
        capture_output=True,
        timeout=BLOCK_TIMEOUT,
    )
    if done.returncode != 0:
        raise BlockFailed(done.returncode, done.stdout, done.stderr)


class BlockFailed(Exception):
    def __init__(self, code: int, stdout: bytes, stderr: bytes):
        super().__init__(
            f"exit {code}\n--- stdout\n{stdout.decode(errors='replace')[-3000:]}"
            f"\n--- stderr\n{stderr.decode(errors='replace')[-3000:]}"
        )


PAGES = [page for page in pages() if blocks_of(page)]


def test_the_server_is_started_as_make_run_starts_it() -> None:
    """The fixture runs .venv/bin/meshgate serve with MESHGATE_DEMO=true: so does make run."""
    recipe = (ROOT / "Makefile").read_text().split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert "MESHGATE_DEMO=$${MESHGATE_DEMO:-true} $(BIN)/meshgate serve" in recipe, recipe


def test_pages_with_runnable_blocks_are_found() -> None:
    names = {str(page.relative_to(ROOT)) for page in PAGES}
    assert {"README.md", "docs/cli.md", "docs/models.md", "docs/sdk.md", "docs/tenants.md"} <= names


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_page_runs_as_written(server: DocServer, page: Path, tmp_path: Path) -> None:
    readme = page == ROOT / "README.md"
    folder = ROOT if readme else tmp_path / "page"
    folder.mkdir(exist_ok=True)
    home = tmp_path / "home"
    home.mkdir()
    env = page_env(server, home, activated=not readme)
    for block in blocks_of(page):
        code = as_run(block, server.port)
        try:
            if block.kind == "shell":
                env = run_shell(code, folder, env, tmp_path / "exported")
            else:
                run_python(code, folder, env)
        except BlockFailed as failure:
            pytest.fail(f"{block.name} ({block.kind}) failed: {failure}", pytrace=False)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{block.name} ({block.kind}) took over {BLOCK_TIMEOUT} s", pytrace=False)


def test_the_server_logs_only_its_own_lines_at_the_default_level(server: DocServer) -> None:
    """What the pages did (CLI, curl, the openai client) left no library's INFO lines."""
    lines = [json.loads(line) for line in server.log.read_text().splitlines() if line[:1] == "{"]
    assert any(line["logger"] == "meshgate.access" for line in lines)
    loggers = {line["logger"] for line in lines if line["level"] in ("info", "debug")}
    assert all(name.startswith(("meshgate", "uvicorn.error")) for name in loggers), loggers


TROUBLESHOOTING = (ROOT / "docs" / "troubleshooting.md").read_text()
START_FAILURES = {
    # what docs/troubleshooting.md quotes: the settings that make `meshgate serve` print it
    "invalid configuration:": {"MESHGATE_PORT": "eighty"},
    "port (MESHGATE_PORT):": {"MESHGATE_PORT": "eighty"},
    ": not found": {"MESHGATE_CONFIG": "no-such-meshgate.yaml"},
    "address already in use": {},  # the port of the running doc server
}


@pytest.mark.parametrize("message", START_FAILURES)
def test_troubleshooting_quotes_what_a_failed_start_prints(
    server: DocServer, message: str, tmp_path: Path
) -> None:
    assert message in TROUBLESHOOTING
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESHGATE_")}
    env.update(MESHGATE_DATA_DIR=str(tmp_path / "data"), MESHGATE_PORT=str(server.port))
    env.update(START_FAILURES[message])
    done = subprocess.run(
        [str(VENV_BIN / "meshgate"), "serve"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert message in done.stdout + done.stderr, done.stdout[-2000:] + done.stderr[-2000:]
