"""One translation suite, run over every provider type through ``/v1/chat/completions``.

Each model is served by a different vendor's provider on that vendor's fake; the fakes share
one behaviour, so every provider must give the caller the same answers. What a vendor lacks
is a 400 naming the field, never a silent drop.
"""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest

from tests.conftest import ADMIN_KEY, Server
from tests.models.vendors.conftest import Fakes

MODELS = ["oa-chat", "an-chat", "gm-chat", "az-chat", "br-chat"]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
PIXEL = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"

# A real server starts first: on a busy machine that alone may take minutes.
pytestmark = pytest.mark.timeout(600)


def client_for(server: Server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=ADMIN_KEY, max_retries=0)


@pytest.mark.parametrize("model", MODELS)
def test_system_prompt_multi_turn_stop_reason_and_usage(server: Server, model: str) -> None:
    done = client_for(server).chat.completions.create(
        model=model,
        messages=[
            {"role": "system", "content": "Be brief"},
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "noted"},
            {"role": "user", "content": "second"},
        ],
    )
    assert done.choices[0].message.content == "system=Be brief turns=3 images=0 said=second"
    assert done.choices[0].finish_reason == "stop"
    assert done.usage is not None
    assert (done.usage.prompt_tokens, done.usage.completion_tokens) == (39, 5)
    assert done.usage.prompt_tokens_details is not None
    assert done.usage.prompt_tokens_details.cached_tokens == 4


@pytest.mark.parametrize("model", MODELS)
def test_streamed_text_and_usage(server: Server, model: str) -> None:
    chunks = list(
        client_for(server).chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "stream me"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "system=- turns=1 images=0 said=stream me"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5


@pytest.mark.parametrize("model", MODELS)
def test_tool_call_and_its_result(server: Server, model: str) -> None:
    client = client_for(server)
    ask: list[Any] = [{"role": "user", "content": "weather in the capital?"}]
    first = client.chat.completions.create(model=model, messages=ask, tools=[WEATHER])
    assert first.choices[0].finish_reason == "tool_calls"
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "Paris"}  # type: ignore[union-attr]
    second = client.chat.completions.create(
        model=model,
        tools=[WEATHER],
        messages=[
            *ask,
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21C"},
        ],
    )
    assert second.choices[0].message.content == "the tool said sunny, 21C"


@pytest.mark.parametrize("model", MODELS)
def test_tool_call_deltas_in_a_stream(server: Server, model: str) -> None:
    chunks = list(
        client_for(server).chat.completions.create(
            model=model,
            messages=[{"role": "user", "content": "weather please"}],
            tools=[WEATHER],
            stream=True,
        )
    )
    deltas = [t for c in chunks if c.choices for t in c.choices[0].delta.tool_calls or ()]
    assert deltas[0].id and deltas[0].function.name == "get_weather"  # type: ignore[union-attr]
    arguments = "".join(d.function.arguments or "" for d in deltas)  # type: ignore[union-attr]
    assert json.loads(arguments) == {"city": "Paris"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


@pytest.mark.parametrize("model", MODELS)
def test_image_parts_reach_the_vendor(server: Server, model: str) -> None:
    content = [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": PIXEL}},
    ]
    done = client_for(server).chat.completions.create(
        model=model, messages=[{"role": "user", "content": content}]
    )
    assert done.choices[0].message.content == "system=- turns=1 images=1 said=what is this"


@pytest.mark.parametrize("model", MODELS)
def test_json_output_or_a_400_naming_it(server: Server, model: str) -> None:
    fmt: Any = {
        "type": "json_schema",
        "json_schema": {
            "name": "echo",
            "schema": {"type": "object", "properties": {"echo": {"type": "string"}}},
        },
    }
    ask: Any = {
        "model": model,
        "messages": [{"role": "user", "content": "json me"}],
        "response_format": fmt,
    }
    if model == "br-chat":
        with pytest.raises(openai.BadRequestError) as refused:
            client_for(server).chat.completions.create(**ask)
        assert refused.value.body["param"] == "response_format"  # type: ignore[index]
        assert "bedrock does not support" in refused.value.body["message"]  # type: ignore[index]
        return
    done = client_for(server).chat.completions.create(**ask)
    assert json.loads(done.choices[0].message.content or "") == {"echo": "json me"}
    assert done.choices[0].finish_reason == "stop"


@pytest.mark.parametrize("model", MODELS)
def test_a_length_stop(server: Server, model: str) -> None:
    done = client_for(server).chat.completions.create(
        model=model, messages=[{"role": "user", "content": "cut me short"}], max_tokens=2
    )
    assert done.choices[0].finish_reason == "length"
    assert done.choices[0].message.content == "system=- turns=1"


@pytest.mark.parametrize("model", MODELS)
def test_vendor_rate_limit_reaches_the_caller_as_429(
    server: Server, fakes: Fakes, model: str
) -> None:
    fake = {
        "oa-chat": fakes.openai,
        "an-chat": fakes.anthropic,
        "gm-chat": fakes.gemini,
        "az-chat": fakes.azure,
        "br-chat": fakes.bedrock,
    }[model]
    fake.fail_status = 429
    try:
        with pytest.raises(openai.RateLimitError):
            client_for(server).chat.completions.create(
                model=model, messages=[{"role": "user", "content": "x"}]
            )
    finally:
        fake.fail_status = None
