"""Each fake vendor, driven by that vendor's official SDK: the fakes speak the real wire."""

from __future__ import annotations

import anthropic

from tests.models.vendors import fake_anthropic
from tests.models.vendors.conftest import Fakes

WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather of a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def test_anthropic_sdk_reads_the_fake_plain_streamed_and_with_tools(fakes: Fakes) -> None:
    client = anthropic.Anthropic(
        base_url=fakes.anthropic.url, api_key=fake_anthropic.API_KEY, max_retries=0
    )
    message = client.messages.create(
        model="claude-fake",
        max_tokens=100,
        system="Be brief",
        messages=[{"role": "user", "content": "hello"}],
    )
    assert message.content[0].text == "system=Be brief turns=1 images=0 said=hello"
    assert message.usage.cache_read_input_tokens == 4
    with client.messages.stream(
        model="claude-fake", max_tokens=100, messages=[{"role": "user", "content": "hi there"}]
    ) as stream:
        assert "".join(stream.text_stream) == "system=- turns=1 images=0 said=hi there"
        assert stream.get_final_message().stop_reason == "end_turn"
    with client.messages.stream(
        model="claude-fake",
        max_tokens=100,
        tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "weather please"}],
    ) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert final.content[0].type == "tool_use" and final.content[0].input == {"city": "Paris"}
    assert fakes.anthropic.headers[-1]["anthropic-version"]
