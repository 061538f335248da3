"""Bad input to the vendor paths: a clear 4xx naming the field, and nothing sent upstream."""

from __future__ import annotations

import anthropic
import openai
import pytest

from tests.conftest import ADMIN_KEY, Server
from tests.models.vendors.conftest import Fakes
from tests.models.vendors.test_translation_suite import PIXEL

# A real server starts first: on a busy machine that alone may take minutes.
pytestmark = pytest.mark.timeout(600)


def client_for(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=ADMIN_KEY, max_retries=0)


@pytest.mark.parametrize("model", ["oa-chat", "an-chat"])
def test_a_tool_schema_that_is_not_json_schema_is_a_400_naming_it(
    server: Server, fakes: Fakes, model: str
) -> None:
    before = fakes.openai.calls() + fakes.anthropic.calls()
    bad = {
        "type": "function",
        "function": {"name": "f", "parameters": {"type": "objekt", "required": "city"}},
    }
    with pytest.raises(openai.BadRequestError) as refused:
        client_for(server).chat.completions.create(
            model=model, messages=[{"role": "user", "content": "x"}], tools=[bad]
        )
    body = refused.value.body
    assert body["param"] == "tools[0].function.parameters"  # type: ignore[index]
    assert "is not a JSON Schema" in body["message"]  # type: ignore[index]
    # The same check guards the Anthropic route, in Anthropic's shape.
    with pytest.raises(anthropic.BadRequestError) as also:
        anthropic.Anthropic(base_url=server.url, api_key=ADMIN_KEY, max_retries=0).messages.create(
            model=model,
            max_tokens=5,
            messages=[{"role": "user", "content": "x"}],
            tools=[{"name": "f", "input_schema": {"type": 5}}],  # type: ignore[list-item]
        )
    assert "tools[0].input_schema is not a JSON Schema" in str(also.value)
    assert fakes.openai.calls() + fakes.anthropic.calls() == before


def test_an_image_to_a_text_only_model_is_a_400_naming_the_part(
    server: Server, fakes: Fakes
) -> None:
    before = fakes.openai.calls()
    content = [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": PIXEL}}]
    with pytest.raises(openai.BadRequestError) as refused:
        client_for(server).chat.completions.create(
            model="text-only", messages=[{"role": "user", "content": content}]
        )
    assert refused.value.body["param"] == "messages[0].content[1]"  # type: ignore[index]
    assert "text only" in refused.value.body["message"]  # type: ignore[index]
    assert fakes.openai.calls() == before


def test_an_unknown_provider_type_is_a_4xx_naming_it(server: Server) -> None:
    with server.client() as http:
        created = http.post("/v1/registry/models", json={"name": "typo-chat", "task": "chat"})
        assert created.status_code == 201, created.text
        version = {"version": "1", "provider": {"type": "openia", "base_url": "http://x"}}
        refused = http.post("/v1/registry/models/typo-chat/versions", json=version)
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["field"].startswith("provider")
        assert "openia" in refused.text
        again = {"version": "1", "provider": {"type": "bedrock", "model": "m", "region": "US East"}}
        assert http.post("/v1/registry/models/typo-chat/versions", json=again).status_code == 422
        assert http.get("/v1/registry/models/typo-chat").json()["versions"] == []
