"""Schemathesis over the whole OpenAPI document against a real ``meshgate serve``.

Every phase runs: the document's examples, coverage (boundary and invalid values of every
constraint), fuzzing (random schema-driven requests, valid and invalid) and the stateful
phase, which follows the document's links (a created resource's id into its GET, PATCH and
DELETE). Every check runs: no 5xx, status codes, content types, headers and bodies as
documented, schema-valid requests accepted and schema-violating ones refused. The few
per-operation exceptions are in schemathesis.toml, each with its reason.

The seed is fixed and the examples per operation bounded, so a run is repeatable and its
size known; a failure prints schemathesis' own report with a ``curl`` line per case.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ADMIN_KEY, Server

pytestmark = pytest.mark.e2e

HERE = Path(__file__).parent
SEED = 20261201
MIN_CASES = 2000
RUN_LIMIT = 600.0
"""A hung run fails the test instead of holding the suite (a quiet run takes ~1-3 min)."""


def run_schemathesis(
    server: Server, report_dir: Path
) -> tuple[subprocess.CompletedProcess[str], dict[str, object]]:
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.fuzz.hooks",
        "PYTHONPATH": os.pathsep.join([str(HERE.parents[1]), os.environ.get("PYTHONPATH", "")]),
    }
    command = [
        sys.executable, "-m", "schemathesis.cli",
        "--config-file", str(HERE / "schemathesis.toml"),
        "--no-color",
        "run", f"{server.url}/openapi.json",
        "--header", f"Authorization: Bearer {ADMIN_KEY}",
        "--seed", str(SEED),
        "--phases", "examples,coverage,fuzzing,stateful",
        "--workers", "1",
        "--report", "json",
        "--report-json-path", str(report_dir / "report.json"),
    ]  # fmt: skip
    done = subprocess.run(
        command, env=env, cwd=report_dir, capture_output=True, text=True, timeout=RUN_LIMIT
    )
    report = json.loads((report_dir / "report.json").read_text())
    return done, report


def findings(output: str) -> str:
    """Schemathesis' report from its first error or failure on (each with a curl line)."""
    starts = [i for i in (output.find("= ERRORS ="), output.find("= FAILURES =")) if i >= 0]
    return output[min(starts, default=0) :][:30000]


@pytest.mark.timeout(RUN_LIMIT + 120)
def test_the_whole_api_survives_the_fuzzer(
    start_server: object, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = start_server(  # type: ignore[operator]
        env={
            # The fuzzer is one client sending thousands of requests a minute.
            "MESHGATE_LIMITS__KEY_RPM": "100000000",
            "MESHGATE_LIMITS__TENANT_RPM": "100000000",
        },
        data_dir=tmp_path / "data",
    )
    started = time.monotonic()
    done, report = run_schemathesis(server, tmp_path)
    elapsed = time.monotonic() - started
    cases = report["test_cases"]["generated"]  # type: ignore[index]
    with capsys.disabled():
        print(f"\nfuzz: {cases} cases in {elapsed:.0f} s (seed {SEED})")
    assert done.returncode == 0, findings(done.stdout) + done.stderr[-5000:]
    assert report["complete"] is True
    assert {p: s["status"] for p, s in report["phases"].items()} == dict.fromkeys(  # type: ignore[union-attr]
        ("examples", "coverage", "fuzzing", "stateful"), "success"
    ), done.stdout[-5000:]
    assert cases >= MIN_CASES, f"only {cases} cases"
