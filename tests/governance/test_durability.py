"""An acknowledged state change has its audit record even when the process is killed."""

from __future__ import annotations

import signal
from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner

from meshgate.cli.audit import app as audit_cli
from tests.conftest import ADMIN_KEY, Server


def test_every_acknowledged_action_is_on_record_after_sigkill(
    start_server: Callable[..., Server], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    server = start_server(data_dir=data_dir)
    acknowledged = []
    with server.client() as http:
        for i in range(20):
            r = http.post("/v1/admin/keys", json={"tenant": f"t{i % 3}", "scopes": ["inference"]})
            assert r.status_code == 201
            acknowledged.append(r.json()["id"])
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(10)

    env = {"MESHGATE_DATA_DIR": str(data_dir), "MESHGATE_ADMIN_KEY": ADMIN_KEY}
    result = CliRunner().invoke(audit_cli, ["verify", "--offline"], env=env)
    assert result.exit_code == 0, result.output

    again = start_server(data_dir=data_dir)
    with again.client() as http:
        records = http.get("/v1/audit", params={"action": "key.created", "limit": 100}).json()
    assert [r["resource"] for r in records["records"]] == [f"keys/{k}" for k in acknowledged]
