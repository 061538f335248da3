"""Several processes appending to one database extend one chain, never fork it."""

from __future__ import annotations

import asyncio
import itertools
import sys
from pathlib import Path

import pytest

from tests.governance.conftest import Clock, open_trail

WORKER = Path(__file__).with_name("append_worker.py")
PER_WRITER = 120


@pytest.mark.parametrize("mode", ["alone", "in_tx"])
async def test_two_processes_appending_at_once_keep_one_verifiable_chain(
    sql_url: str, tmp_path: Path, mode: str
) -> None:
    """``in_tx``: each record is written in the transaction of the change it records."""
    data_dir = tmp_path / "data"
    trail = await open_trail(sql_url, data_dir, Clock(), checkpoint_every=7)
    await trail.sql.execute("CREATE TABLE things (actor TEXT NOT NULL, n INTEGER NOT NULL)")
    try:
        writers = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                str(WORKER),
                sql_url,
                str(data_dir),
                f"key_{name}",
                str(PER_WRITER),
                mode,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                cwd=Path(__file__).parents[2],
            )
            for name in ("a", "b")
        ]
        for writer in writers:
            assert writer.stdout is not None
            assert await asyncio.wait_for(writer.stdout.readline(), 60) == b"ready\n"
        for writer in writers:
            assert writer.stdin is not None
            writer.stdin.write(b"go\n")
            await writer.stdin.drain()
        for writer in writers:
            _, err = await asyncio.wait_for(writer.communicate(), 120)
            assert writer.returncode == 0, err.decode()[-2000:]

        rows = await trail.sql.fetch_all(
            "SELECT actor, COUNT(*) AS n FROM audit_records GROUP BY actor ORDER BY actor"
        )
        assert [(r["actor"], int(r["n"])) for r in rows] == [
            ("key_a", PER_WRITER),
            ("key_b", PER_WRITER),
        ]
        # The writers really interleaved: neither wrote all its records in one run.
        order = await trail.sql.fetch_all("SELECT actor FROM audit_records ORDER BY seq")
        switches = sum(1 for x, y in itertools.pairwise(order) if x != y)
        assert switches > 2

        if mode == "in_tx":
            things = await trail.sql.fetch_all(
                "SELECT actor, COUNT(*) AS n FROM things GROUP BY actor ORDER BY actor"
            )
            assert [(r["actor"], int(r["n"])) for r in things] == [
                ("key_a", PER_WRITER),
                ("key_b", PER_WRITER),
            ]
        result = await trail.audit.verify()
        assert result["ok"] is True, result
        assert result["records"] == 2 * PER_WRITER
        assert result["checkpoints"]["count"] == (2 * PER_WRITER) // 7
    finally:
        await trail.sql.close()
