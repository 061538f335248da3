"""``meshgate audit verify | export | public-key`` and exports verified with a public key alone."""

from __future__ import annotations

import asyncio
import io
import sqlite3
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from meshgate.cli.audit import app as audit_cli
from meshgate.config import Settings
from meshgate.governance.export import export_jsonl, verify_export
from tests.conftest import ADMIN_KEY, app_client
from tests.governance.conftest import START, Trail


def lines_of(data: bytes) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in data.splitlines()]


async def test_an_export_of_a_window_is_widened_to_signed_checkpoints(trail: Trail) -> None:
    for day in range(4):
        trail.clock.at = START + timedelta(days=day)
        await trail.add(4)  # 4 records a day, signed every 5
    out = io.BytesIO()
    counts = await export_jsonl(
        trail.audit,
        out,
        since=(START + timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        until=(START + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    )
    items = lines_of(out.getvalue())
    # Day 1 is 5..8; the anchor is the checkpoint before 5 (none: from 1) and the last is 10.
    assert items[0]["kind"] == "header"
    kinds = [(i["kind"], i["sequence"]) for i in items[1:]]
    assert kinds[0] == ("record", 1) and kinds[-1] == ("checkpoint", 10)
    assert counts == {"records": 10, "checkpoints": 2}

    result = verify_export(out.getvalue().splitlines(), trail.audit.signer.keys)
    assert result["ok"] is True and result["records"] == 10 and result["unsigned_tail"] == 0

    out = io.BytesIO()
    await export_jsonl(trail.audit, out, since=(START + timedelta(days=3)).isoformat())
    items = lines_of(out.getvalue())
    assert (items[1]["kind"], items[1]["sequence"]) == ("checkpoint", 10)  # the anchor
    assert [i["sequence"] for i in items if i["kind"] == "record"] == list(range(11, 17))
    result = verify_export(out.getvalue().splitlines(), trail.audit.signer.keys)
    assert result["ok"] is True and result["first_sequence"] == 11
    assert result["unsigned_tail"] == 1  # record 16 is chained but not yet signed

    for window in ({"since": "2030-01-01T00:00:00Z"}, {"until": "2020-01-01T00:00:00Z"}):
        out = io.BytesIO()
        assert await export_jsonl(trail.audit, out, **window) == {"records": 0, "checkpoints": 0}
        assert [i["kind"] for i in lines_of(out.getvalue())] == ["header"]


async def test_a_tampered_export_is_found(trail: Trail) -> None:
    await trail.add(12)
    out = io.BytesIO()
    await export_jsonl(trail.audit, out)
    items = lines_of(out.getvalue())
    keys = trail.audit.signer.keys

    edited = [dict(i) for i in items]
    edited[3]["actor"] = "key_mallory"  # the third record
    dropped = [i for i in items if i.get("sequence") != 4 or i["kind"] != "record"]
    for tampered, sequence in ((edited, 3), (dropped, 4)):
        result = verify_export([orjson.dumps(i) for i in tampered], keys)
        assert result["ok"] is False and result["first_bad"]["sequence"] == sequence


# --- the command line ------------------------------------------------------------------------


@pytest.fixture
def cli_env(settings: Settings) -> dict[str, str]:
    """A deployment with three keys created through the API; the CLI reads the same store."""

    async def populate() -> None:
        async with app_client(settings) as client:
            for tenant in ("acme", "acme", "globex"):
                r = await client.post(
                    "/v1/admin/keys", json={"tenant": tenant, "scopes": ["inference"]}
                )
                assert r.status_code == 201

    asyncio.run(populate())
    return {"MESHGATE_DATA_DIR": str(settings.data_dir), "MESHGATE_ADMIN_KEY": ADMIN_KEY}


def run(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(audit_cli, list(args), env=env)


def test_cli_verify_exits_zero_on_a_sound_chain_and_one_on_a_tampered_one(
    cli_env: dict[str, str], settings: Settings
) -> None:
    ok = run(cli_env, "verify", "--offline")
    assert ok.exit_code == 0, ok.output
    assert orjson.loads(ok.stdout)["records"] == 3

    with sqlite3.connect(settings.data_dir / "meshgate.db") as db:
        db.execute("UPDATE audit_records SET resource = 'keys/other' WHERE seq = 2")
    broken = run(cli_env, "verify", "--offline")
    assert broken.exit_code == 1
    assert orjson.loads(broken.stdout)["first_bad"]["sequence"] == 2
    assert "broken at record 2" in broken.stderr


def test_cli_export_verifies_elsewhere_with_the_public_key_only(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    export = tmp_path / "audit.jsonl"
    key = tmp_path / "audit.pub"
    assert (
        run(cli_env, "export", "--offline", "--format", "jsonl", "--output", str(export)).exit_code
        == 0
    )
    printed = run(cli_env, "public-key", "--offline")
    assert printed.stdout.startswith("-----BEGIN PUBLIC KEY-----")
    key.write_text(printed.stdout)

    ok = run({}, "verify", "--file", str(export), "--public-key", str(key))
    assert ok.exit_code == 0, ok.output
    assert orjson.loads(ok.stdout)["records"] == 3

    lines = export.read_bytes().splitlines()
    record = orjson.loads(lines[2])
    record["details"] = {"scopes": ["admin"]}
    lines[2] = orjson.dumps(record)
    export.write_bytes(b"\n".join(lines))
    broken = run({}, "verify", "--file", str(export), "--public-key", str(key))
    assert broken.exit_code == 1
    assert "broken at record 2" in broken.stderr


def test_cli_refuses_bad_input_naming_what_is_wrong(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text("not json\n")
    key = tmp_path / "audit.pub"
    key.write_text(run(cli_env, "public-key", "--offline").stdout)
    cases = [
        (("export", "--offline", "--since", "last tuesday"), "since"),
        (("export", "--offline", "--format", "csv"), "jsonl"),
        (("verify", "--file", str(garbage)), "--public-key"),
        (("verify", "--file", str(garbage), "--public-key", str(key)), "not"),
        (("verify", "--file", str(key), "--public-key", str(garbage)), "public key"),
    ]
    for args, says in cases:
        result = run(cli_env, *args)
        assert result.exit_code == 2, (args, result.output)
        assert says in result.output, (args, result.output)


def test_cli_verify_without_any_key_asks_for_one_and_creates_none(
    cli_env: dict[str, str], settings: Settings, tmp_path: Path
) -> None:
    key_file = settings.data_dir / "audit_signing_key.pem"
    pem = run(cli_env, "public-key", "--offline").stdout
    published = tmp_path / "audit.pub"
    published.write_text(pem)
    key_file.rename(tmp_path / "moved.pem")  # an auditor's machine: the store, not the key

    refused = run(cli_env, "verify", "--offline")
    assert refused.exit_code == 2 and "--public-key" in refused.output
    assert not key_file.exists()
    ok = run(cli_env, "verify", "--offline", "--public-key", str(published))
    assert ok.exit_code == 0, ok.output
    assert orjson.loads(ok.stdout)["ok"] is True
    assert not key_file.exists()
