"""``models:`` in meshgate.yaml: a bad declaration stops the start with the key named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from meshgate.config import ConfigError, load_settings

GOOD: dict[str, Any] = {
    "name": "helpdesk",
    "task": "chat",
    "versions": [{"version": "1", "provider": {"type": "openai", "base_url": "http://x/v1"}}],
}


def load(tmp_path: Path, models: list[dict[str, Any]]) -> Any:
    file = tmp_path / "meshgate.yaml"
    file.write_text(yaml.safe_dump({"models": models}))
    return load_settings(file)


def test_a_valid_declaration_is_typed(tmp_path: Path) -> None:
    [model] = load(tmp_path, [GOOD]).models
    assert model.versions[0].provider.type == "openai"
    assert model.versions[0].resilience.breaker.failures == 5


@pytest.mark.parametrize(
    ("change", "key", "fragment"),
    [
        ({"task": "poetry"}, "models.0.task", "chat"),
        ({"traffic": {"split": {"1": 50}}}, "models.0.traffic.split", "sum to 100"),
        ({"traffic": {"split": {"2": 100}}}, "models.0", "versions not declared: 2"),
        ({"versions": [{"version": "1", "provider": {"type": "openai"}}]},
         "models.0.versions.0.provider.openai.base_url", "Field required"),
        ({"versions": [{**GOOD["versions"][0], "resilience": {"retries": 9}}]},
         "models.0.versions.0.resilience.retries", "less than or equal to 5"),
    ],
)  # fmt: skip
def test_bad_declarations_name_the_key(
    tmp_path: Path, change: dict[str, Any], key: str, fragment: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, [{**GOOD, **change}])
    assert key in str(caught.value) and fragment in str(caught.value)
