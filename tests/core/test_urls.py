"""Each backend port names the URL schemes it takes: a URL in the wrong setting is a config
error naming the key, at start."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from meshgate.app import create_app
from meshgate.cli import app as cli
from meshgate.config import Settings
from meshgate.core.urls import UnsupportedUrl


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"database_url": "nats://127.0.0.1:4222"}, "database_url"),
        ({"limiter_url": "sqlite:///x.db"}, "limiter_url"),
        ({"events": {"url": "postgresql://127.0.0.1/x"}}, "events.url"),
    ],
)
def test_a_url_of_the_wrong_kind_names_its_key(
    tmp_path: Path, overrides: dict[str, object], key: str
) -> None:
    settings = Settings(data_dir=tmp_path, **overrides)  # type: ignore[arg-type]
    with pytest.raises(UnsupportedUrl) as raised:
        create_app(settings)
    assert str(raised.value).startswith(f"{key}: ")


def test_the_cli_exits_2_naming_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESHGATE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("MESHGATE_DATABASE_URL", "nats://127.0.0.1:4222")
    monkeypatch.delenv("MESHGATE_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        cli, ["events", "replay", "--group", "g", "--after", "1", "--offline"]
    )
    assert result.exit_code == 2
    assert "database_url" in result.output and "nats" in result.output
