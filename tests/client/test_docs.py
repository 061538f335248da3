"""Every Python block of docs/sdk.md runs, as written, against a real server."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ADMIN_KEY, Server

# A real server starts first; the shared test machine can be slow to start one.
pytestmark = pytest.mark.timeout(600)

DOC = Path(__file__).resolve().parents[2] / "docs" / "sdk.md"
BLOCKS = re.findall(r"```python norun\n(.*?)```", DOC.read_text(), re.S)


def test_the_page_has_examples() -> None:
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("block", range(len(BLOCKS)))
def test_example_runs(server: Server, block: int) -> None:
    env = {**os.environ, "MESHGATE_URL": server.url, "MESHGATE_API_KEY": ADMIN_KEY}
    done = subprocess.run(
        [sys.executable, "-c", BLOCKS[block]], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip(), "an example prints what it shows"
