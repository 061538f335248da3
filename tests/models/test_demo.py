"""The demo of ``make run``: iris in two versions split 90/10, and a chat model on a URL."""

from __future__ import annotations

from collections.abc import Callable

from meshgate.config import Settings
from tests.conftest import app_client
from tests.models.fake_openai import FakeOpenAI


async def test_demo_registers_iris_and_a_chat_model_on_the_url(
    make_settings: Callable[..., Settings], primary: FakeOpenAI
) -> None:
    settings = make_settings(demo=True, demo_chat_url=primary.base_url)
    async with app_client(settings) as client:
        iris = (await client.get("/v1/registry/models/iris")).json()
        assert [(v["version"], v["provider"]["type"]) for v in iris["versions"]] == [
            ("1", "onnx"),
            ("2", "sklearn"),
        ]
        assert iris["traffic"]["split"] == {"1": 90, "2": 10}
        assert iris["traffic"]["sticky"] == "user"
        history = (await client.get("/v1/registry/models/iris/history")).json()["history"]
        chat = await client.post(
            "/v1/chat/completions",
            json={"model": "demo-chat", "messages": [{"role": "user", "content": "hey"}]},
        )
        assert chat.status_code == 200 and chat.json()["choices"][0]["message"]["content"] == (
            "primary says: hey"
        )
    files = sorted(p.name for p in (settings.data_dir / "models").iterdir())
    assert files == ["iris-1.onnx", "iris-2.skops"]
    # A second start reuses the files and the registry as they are.
    async with app_client(settings) as client:
        again = (await client.get("/v1/registry/models/iris/history")).json()["history"]
        assert again == history  # nothing registered twice
