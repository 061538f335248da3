"""Settings: file plus environment, validated once; a bad value stops the start naming the key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from meshgate.config import ConfigError, load_settings


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "meshgate.yaml"
    config.write_text("port: 9001\nlimits:\n  key_rpm: 10\n  tenant_rpm: 99\n")
    monkeypatch.setenv("MESHGATE_LIMITS__KEY_RPM", "77")
    settings = load_settings(config)
    assert settings.port == 9001
    assert settings.limits.key_rpm == 77
    assert settings.limits.tenant_rpm == 99
    assert settings.sql_url == "sqlite:///data/meshgate.db"
    assert settings.limiter_backend_url == "memory://"


def test_backends_follow_the_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESHGATE_REDIS_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("MESHGATE_DATABASE_URL", "postgresql://127.0.0.1/test")
    settings = load_settings()
    assert settings.limiter_backend_url == "redis://127.0.0.1:6379/0"
    assert settings.sql_url == "postgresql://127.0.0.1/test"


@pytest.mark.parametrize(
    ("content", "env", "named"),
    [
        ("port: 99999\n", {}, "port (MESHGATE_PORT)"),
        ("", {"MESHGATE_LIMITS__KEY_RPM": "-1"}, "limits.key_rpm (MESHGATE_LIMITS__KEY_RPM)"),
        ("database_url: mysql://x\n", {}, "database_url"),
        ("colour: blue\n", {}, "colour"),
    ],
)
def test_a_bad_value_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str, env: dict[str, str], named: str
) -> None:
    config = tmp_path / "meshgate.yaml"
    config.write_text(content)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=named.replace("(", r"\(").replace(")", r"\)")):
        load_settings(config)


def test_serve_exits_non_zero_naming_the_key(tmp_path: Path) -> None:
    env = {**os.environ, "MESHGATE_PORT": "not-a-port", "MESHGATE_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "meshgate", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "port (MESHGATE_PORT)" in done.stdout + done.stderr
    assert not (tmp_path / "meshgate.db").exists()  # nothing was started or written


def test_several_workers_without_a_shared_limiter_are_refused(tmp_path: Path) -> None:
    """Each worker is a process: per-worker memory limiters would multiply every limit."""
    with pytest.raises(ConfigError, match="workers: 2 workers need a limiter they share"):
        load_settings(workers=2, data_dir=tmp_path)
    shared = load_settings(workers=2, data_dir=tmp_path, redis_url="redis://127.0.0.1:6379/15")
    assert shared.limiter_backend_url.startswith("redis:")
