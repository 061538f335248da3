"""Fake vendor servers and one real Meshgate server with a chat model on each of them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Server
from tests.models.vendors import fake_anthropic
from tests.models.vendors.fake_anthropic import FakeAnthropic
from tests.models.vendors.fake_openai_wire import FakeOpenAIWire
from tests.models.vendors.fakes import FakeHost

ENV = {"MG_TEST_ANTHROPIC_KEY": fake_anthropic.API_KEY}


class Fakes:
    def __init__(self, host: FakeHost):
        self.openai = host.start(FakeOpenAIWire, "openai")
        self.anthropic = host.start(FakeAnthropic, "anthropic")


@pytest.fixture(scope="package")
def fakes() -> Iterator[Fakes]:
    host = FakeHost()
    yield Fakes(host)
    host.close()


def providers(f: Fakes) -> dict[str, dict[str, Any]]:
    """One provider spec per vendor, each on its fake, by the model name that serves it."""
    return {
        "oa-chat": {"type": "openai", "base_url": f.openai.url + "/v1", "model": "gpt-fake"},
        "an-chat": {
            "type": "anthropic",
            "base_url": f.anthropic.url,
            "model": "claude-fake",
            "api_key_env": "MG_TEST_ANTHROPIC_KEY",
        },
    }


def declarations(f: Fakes) -> list[dict[str, Any]]:
    quick = {"timeout_seconds": 10, "retries": 0}
    models = [
        {
            "name": name,
            "task": "chat",
            "versions": [{"version": "1", "provider": spec, "resilience": quick}],
        }
        for name, spec in providers(f).items()
    ]
    text_only = {**providers(f)["oa-chat"], "modalities": ["text"]}
    models.append({"name": "text-only", "versions": [{"version": "1", "provider": text_only}]})
    return models


class PatientServer(Server):
    """Starting a server imports the whole platform: on a busy shared machine, give it time."""

    def wait_ready(self, timeout: float = 120) -> None:
        super().wait_ready(timeout)


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory, fakes: Fakes) -> Iterator[Server]:
    data_dir: Path = tmp_path_factory.mktemp("vendors-server")
    config = data_dir / "meshgate.yaml"
    config.write_text(yaml.safe_dump({"models": declarations(fakes)}))
    server = PatientServer({"MESHGATE_CONFIG": str(config), **ENV}, data_dir)
    yield server
    server.stop()
