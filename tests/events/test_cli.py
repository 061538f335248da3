"""``meshgate events export | replay`` as an operator runs them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from meshgate.cli.events import app as events_cli
from meshgate.config import Settings
from tests.conftest import ADMIN_KEY, app_client

ROOT = Path(__file__).resolve().parents[2]


def env_for(data_dir: Path) -> dict[str, str]:
    return {"MESHGATE_DATA_DIR": str(data_dir), "MESHGATE_ADMIN_KEY": ADMIN_KEY}


def run(data_dir: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(events_cli, list(args), env=env_for(data_dir))


async def fill(settings: Settings) -> None:
    async with app_client(settings) as client:
        events = client.app.state.services.events  # type: ignore[attr-defined]
        for n in range(3):
            await events.publish("shop.order", tenant="default", data={"n": n})
        await events.publish("shop.refund", tenant="default", data={"n": 9})
        await events.publish(
            "shop.order", tenant="default", data={"n": 3}, personal={"mail": "x@y"}, user_id="u"
        )
        await events.shred_user("default", "u")
        await events.publish("shop.order", tenant="other", data={"n": 99})
        await events.log.commit("reports", 5)


async def committed(settings: Settings, group: str) -> int:
    async with app_client(settings) as client:
        return await client.app.state.services.events.log.committed(group)  # type: ignore[attr-defined]


def test_replay_rewinds_a_consumer_group_offline(tmp_path: Path):
    """Consumer groups have no API: ``replay --group --offline`` opens the existing store.

    (``events export`` and ``list`` speak to the API: tests/cli/test_events_and_audit.py.)
    """
    data_dir = tmp_path / "data"
    settings = Settings(data_dir=data_dir, admin_key=ADMIN_KEY)
    asyncio.run(fill(settings))

    # Once as a real process, the way an operator runs it.
    rewound = subprocess.run(
        [
            sys.executable,
            "-m",
            "meshgate",
            "events",
            "replay",
            "--group",
            "reports",
            "--after",
            "2",
            "--offline",
        ],
        cwd=ROOT,
        env={**os.environ, **env_for(data_dir)},
        capture_output=True,
        timeout=120,
    )
    assert rewound.returncode == 0, rewound.stderr.decode()
    assert b"offset 5 -> 2" in rewound.stderr
    assert asyncio.run(committed(settings, "reports")) == 2


def test_bad_command_lines_are_refused_before_touching_anything(tmp_path: Path):
    data_dir = tmp_path / "data"
    for args, needle in [
        (["replay", "--after", "1"], "--group"),
        (["replay", "--after", "-1", "--group", "g"], "--after"),
        (["replay", "--after", "1", "--group", "g"], "--offline"),
        (["replay", "--after", "1", "--group", "g", "--offline"], "MESHGATE_DATA_DIR"),
    ]:
        result = run(data_dir, *args)
        assert result.exit_code == 2, (args, result.output)
        assert needle in result.output, (args, result.output)
    assert not data_dir.exists()
