"""Fake vendor servers and one real Meshgate server with a chat model on each of them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Server
from tests.models.vendors import fake_anthropic, fake_bedrock, fake_gemini
from tests.models.vendors.fake_anthropic import FakeAnthropic
from tests.models.vendors.fake_bedrock import FakeBedrock
from tests.models.vendors.fake_gemini import FakeGemini
from tests.models.vendors.fake_openai_wire import FakeAzure, FakeOpenAIWire
from tests.models.vendors.fakes import FakeHost

ENV = {
    "MG_TEST_ANTHROPIC_KEY": fake_anthropic.API_KEY,
    "MG_TEST_GEMINI_KEY": fake_gemini.API_KEY,
    "MG_TEST_AZURE_KEY": FakeAzure.api_key,
    "MG_TEST_AWS": f"{fake_bedrock.ACCESS_KEY}:{fake_bedrock.SECRET_KEY}",
}
BEDROCK_MODEL = "anthropic.claude-fake-v1:0"


class Fakes:
    def __init__(self, host: FakeHost):
        self.openai = host.start(FakeOpenAIWire, "openai")
        self.anthropic = host.start(FakeAnthropic, "anthropic")
        self.gemini = host.start(FakeGemini, "gemini")
        self.azure = host.start(FakeAzure, "azure")
        self.bedrock = host.start(FakeBedrock, "bedrock")
        self.east = host.start(FakeOpenAIWire, "east")
        self.west = host.start(FakeOpenAIWire, "west")


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
        "gm-chat": {
            "type": "gemini",
            "base_url": f.gemini.url,
            "model": "gemini-fake",
            "api_key_env": "MG_TEST_GEMINI_KEY",
        },
        "az-chat": {
            "type": "azure_openai",
            "endpoint": f.azure.url,
            "deployment": "gpt-fake-eu",
            "api_key_env": "MG_TEST_AZURE_KEY",
        },
        "br-chat": {
            "type": "bedrock",
            "model": BEDROCK_MODEL,
            "region": fake_bedrock.REGION,
            "endpoint_url": f.bedrock.url,
            "api_key_env": "MG_TEST_AWS",
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
    deployments = {
        "type": "deployments",
        "routing": "weighted",
        "cooldown_seconds": 600,
        "deployments": [
            {
                "name": "east",
                "rpm": 100,
                "provider": {"type": "openai", "base_url": f.east.url + "/v1", "model": "gpt-e"},
            },
            {
                "name": "west",
                "rpm": 100,
                "provider": {"type": "openai", "base_url": f.west.url + "/v1", "model": "gpt-w"},
            },
        ],
    }
    models.append(
        {
            "name": "multi",
            "versions": [{"version": "1", "provider": deployments, "resilience": quick}],
        }
    )
    text_only = {**providers(f)["oa-chat"], "modalities": ["text"]}
    models.append({"name": "text-only", "versions": [{"version": "1", "provider": text_only}]})
    return models


class PatientServer(Server):
    """Starting a server imports the whole platform: on a busy shared machine, give it time."""

    def wait_ready(self, timeout: float = 300) -> None:
        super().wait_ready(timeout)


@pytest.fixture(scope="package")
def server(tmp_path_factory: pytest.TempPathFactory, fakes: Fakes) -> Iterator[Server]:
    data_dir: Path = tmp_path_factory.mktemp("vendors-server")
    config = data_dir / "meshgate.yaml"
    config.write_text(yaml.safe_dump({"models": declarations(fakes)}))
    server = PatientServer({"MESHGATE_CONFIG": str(config), **ENV}, data_dir)
    yield server
    server.stop()
