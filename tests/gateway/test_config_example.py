"""The example configuration is generated from the settings model and stays in step with it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from meshgate.config import load_settings
from meshgate.config_example import example_yaml

EXAMPLE = Path(__file__).parents[2] / "meshgate.example.yaml"


def test_the_committed_example_is_current_and_valid() -> None:
    assert EXAMPLE.read_text() == example_yaml(), (
        "run: meshgate config example > meshgate.example.yaml"
    )
    settings = load_settings(EXAMPLE)
    assert settings.port == 8080 and settings.limits.key_rpm == 600


def test_config_show_masks_secrets(tmp_path: Path) -> None:
    env = {**os.environ, "MESHGATE_ADMIN_KEY": "very-secret-admin-key", "MESHGATE_PORT": "9123"}
    shown = subprocess.run(
        [sys.executable, "-m", "meshgate", "config", "show"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert shown.returncode == 0, shown.stderr
    assert '"port": 9123' in shown.stdout
    assert "very-secret-admin-key" not in shown.stdout and "**********" in shown.stdout
