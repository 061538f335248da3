"""An acknowledged append survives SIGKILL of the appending process (SQLite, NATS and
RabbitMQ Streams)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from meshgate.events.backends import open_event_log

from .conftest import drop_nats_stream, drop_rabbitmq_stream

ROOT = Path(__file__).resolve().parents[2]


def run_and_kill(url: str, namespace: str, data_dir: Path, seconds: float) -> list[str]:
    """Start the appender, let it work, SIGKILL it; returns the lines it had written."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.events.appender", url, namespace, str(data_dir)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    assert first == b"ready\n", first + proc.stderr.read() if proc.stderr else first
    time.sleep(seconds)
    os.kill(proc.pid, signal.SIGKILL)
    out = proc.stdout.read().decode()
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    lines = out.splitlines()
    if lines and out and not out.endswith("\n"):
        lines = lines[:-1]  # a line cut by the kill acknowledges nothing
    return lines


@pytest.mark.parametrize("backend", ["sqlite", "nats", "rabbitmq"])
async def test_every_acknowledged_append_survives_sigkill_in_order_without_gaps(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, namespace: str
):
    url = {
        "sqlite": lambda: f"sqlite:///{tmp_path / 'events.db'}",
        "nats": lambda: request.getfixturevalue("nats_url"),
        "rabbitmq": lambda: request.getfixturevalue("rabbitmq_stream_url"),
    }[backend]()
    try:
        acked = run_and_kill(url, namespace, tmp_path, seconds=1.5)
        assert len(acked) > 500, "the appender should have done real work before the kill"

        log = open_event_log(url, data_dir=tmp_path, namespace=namespace)
        await log.start()
        stored = []
        after = 0
        while page := await log.read(after, 5000):
            stored += page
            after = page[-1].sequence
        await log.close()

        sequences = [r.sequence for r in stored]
        assert sequences == list(range(1, len(stored) + 1))  # no gaps, in order
        ids = [r.id for r in stored]
        assert len(ids) == len(set(ids))  # no duplicates
        by_id = {r.id: r.sequence for r in stored}
        last_n: dict[str, int] = {}
        for line in acked:
            producer, n, sequence = line.split()
            assert by_id.get(f"{producer}-{n}") == int(sequence), f"lost ack {line}"
            # Each producer's appends are in the log in the order it made them.
            assert int(n) == last_n.get(producer, -1) + 1
            last_n[producer] = int(n)
        for record in stored:
            assert record.data["n"] <= last_n.get(str(record.data["p"]), -1) + 1
    finally:
        if backend == "nats":
            await drop_nats_stream(url, namespace)
        if backend == "rabbitmq":
            await drop_rabbitmq_stream(url, namespace)
