"""``meshgate events`` and ``meshgate audit`` over the API; an export verifies offline."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.cli.conftest import Run
from tests.conftest import Server

# A real server starts first; the shared test machine can be slow to start one.
pytestmark = pytest.mark.timeout(600)


def test_events_list_export_and_tail(meshgate: Run, server: Server, tmp_path: Path) -> None:
    with server.client() as http:
        batch = [
            {
                "specversion": "1.0",
                "id": f"o{n}",
                "source": "/shop",
                "type": "shop.order",
                "data": n,
            }
            for n in range(3)
        ]
        sent = http.post("/v1/events", json=batch).json()
    first = sent[0]["sequence"]
    listed = json.loads(meshgate("events", "list", "--type", "shop.order", "--json").stdout)
    assert [e["data"] for e in listed["events"]] == [0, 1, 2]
    table = meshgate("events", "list", "--type", "shop.order")
    assert "shop.order" in table.stdout

    jsonl = meshgate("events", "export", "--type", "shop.order")
    assert jsonl.returncode == 0, jsonl.stderr
    assert [json.loads(line)["data"] for line in jsonl.stdout.splitlines()] == [0, 1, 2]
    assert "exported 3 events" in jsonl.stderr
    out = tmp_path / "orders.parquet"
    parquet = meshgate("events", "export", "-f", "parquet", "-o", str(out), "--type", "shop.order")
    assert parquet.returncode == 0, parquet.stderr
    assert pq.read_table(out).num_rows == 3

    tail = meshgate("events", "tail", "--type", "shop.order", "--after", str(first), "--count", "2")
    assert tail.returncode == 0, tail.stderr
    assert [json.loads(line)["id"] for line in tail.stdout.splitlines()] == ["o1", "o2"]

    for args, needle in [
        (["events", "export", "--format", "xlsx"], "--format"),
        (["events", "export", "--format", "parquet"], "--output"),
        (["events", "export", "--since", "last week"], "last week"),
        (["events", "list", "--type", "bad type"], "--type"),
        (["events", "replay", "--after", "1"], "--group"),
        (["events", "replay", "--after", "1", "--group", "g"], "--offline"),
    ]:
        done = meshgate(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert needle in done.stderr, (args, done.stderr)


def test_audit_list_verify_and_an_export_verified_with_the_key_alone(
    meshgate: Run, tmp_path: Path
) -> None:
    assert meshgate("keys", "create", "--scope", "inference").returncode == 0
    records = json.loads(meshgate("audit", "list", "--action", "key.created", "--json").stdout)
    assert records["records"] and records["records"][0]["action"] == "key.created"
    verified = meshgate("audit", "verify")
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["ok"] is True

    export = tmp_path / "audit.jsonl"
    exported = meshgate("audit", "export", "-o", str(export))
    assert exported.returncode == 0, exported.stderr
    count = int(exported.stderr.split("exported ")[1].split()[0])
    assert count >= 1 and len(export.read_text().splitlines()) >= count + 1
    key = tmp_path / "audit.pem"
    key.write_text(meshgate("audit", "public-key").stdout)
    checked = meshgate("audit", "verify", "--file", str(export), "--public-key", str(key))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert json.loads(checked.stdout)["ok"] is True

    lines = export.read_text().splitlines()
    record = json.loads(lines[1])
    record["actor"] = "someone else"
    lines[1] = json.dumps(record)
    export.write_text("\n".join(lines) + "\n")
    tampered = meshgate("audit", "verify", "--file", str(export), "--public-key", str(key))
    assert tampered.returncode == 1 and "broken at record" in tampered.stderr
