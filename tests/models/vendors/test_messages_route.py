"""The official ``anthropic`` client against ``POST /v1/messages``, whatever serves the model.

The same calls go to a model on an OpenAI upstream and to one on an Anthropic upstream; the
fakes share one behaviour, so the client must see the same results from both.
"""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import pytest

from tests.conftest import ADMIN_KEY, Server
from tests.models.vendors.test_fakes_with_sdks import WEATHER_TOOL

MODELS = ["oa-chat", "an-chat"]

# A real server starts first: on a busy machine that alone may take minutes.
pytestmark = pytest.mark.timeout(600)


def client_for(server: Server, key: str = ADMIN_KEY) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=server.url, api_key=key, max_retries=0)


def plain(server: Server, model: str) -> dict[str, Any]:
    message = client_for(server).messages.create(
        model=model,
        max_tokens=200,
        system="Be brief",
        messages=[
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "noted"},
            {"role": "user", "content": [{"type": "text", "text": "second"}]},
        ],
    )
    assert message.model == model and message.type == "message"
    return {
        "text": [b.text for b in message.content if b.type == "text"],
        "stop": message.stop_reason,
        "usage": (
            message.usage.input_tokens,
            message.usage.output_tokens,
            message.usage.cache_read_input_tokens,
        ),
    }


def test_plain_messages_are_the_same_from_openai_and_anthropic_upstreams(server: Server) -> None:
    results = [plain(server, m) for m in MODELS]
    assert results[0]["text"] == ["system=Be brief turns=3 images=0 said=second"]
    assert results[0]["stop"] == "end_turn"
    assert results[0]["usage"] == (35, 5, 4)
    assert results[0] == results[1]


def streamed(server: Server, model: str) -> dict[str, Any]:
    with client_for(server).messages.stream(
        model=model, max_tokens=200, messages=[{"role": "user", "content": "stream me"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    return {
        "text": text,
        "stop": final.stop_reason,
        "out": final.usage.output_tokens,
        "cached": final.usage.cache_read_input_tokens,
    }


def test_streamed_messages_are_the_same_from_both_upstreams(server: Server) -> None:
    results = [streamed(server, m) for m in MODELS]
    assert results[0] == {
        "text": "system=- turns=1 images=0 said=stream me",
        "stop": "end_turn",
        "out": 5,
        "cached": 4,
    }
    assert results[0] == results[1]


def tool_round(server: Server, model: str, stream: bool) -> dict[str, Any]:
    client = client_for(server)
    ask: list[Any] = [{"role": "user", "content": "weather in the capital?"}]
    if stream:
        with client.messages.stream(
            model=model, max_tokens=200, tools=[WEATHER_TOOL], messages=ask
        ) as s:
            first = s.get_final_message()
    else:
        first = client.messages.create(
            model=model, max_tokens=200, tools=[WEATHER_TOOL], messages=ask
        )
    call = next(b for b in first.content if b.type == "tool_use")
    result = {"type": "tool_result", "tool_use_id": call.id, "content": "sunny, 21C"}
    second = client.messages.create(
        model=model,
        max_tokens=200,
        tools=[WEATHER_TOOL],
        messages=[
            *ask,
            {"role": "assistant", "content": first.content},
            {"role": "user", "content": [result]},
        ],
    )
    return {
        "stop": first.stop_reason,
        "name": call.name,
        "input": call.input,
        "answer": second.content[0].text,
    }


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_tool_calls_and_results_are_the_same_from_both_upstreams(
    server: Server, stream: bool
) -> None:
    results = [tool_round(server, m, stream) for m in MODELS]
    assert results[0] == {
        "stop": "tool_use",
        "name": "get_weather",
        "input": {"city": "Paris"},
        "answer": "the tool said sunny, 21C",
    }
    assert results[0] == results[1]


def test_errors_come_in_anthropic_shape(server: Server) -> None:
    client = client_for(server)
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.create(
            model="no-such-model", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    with pytest.raises(anthropic.AuthenticationError):
        client_for(server, "mg_wrong_key").messages.create(
            model="oa-chat", max_tokens=5, messages=[{"role": "user", "content": "x"}]
        )
    raw = httpx.post(
        server.url + "/v1/messages",
        headers={"x-api-key": ADMIN_KEY},
        json={"model": "oa-chat", "messages": [{"role": "user", "content": "x"}]},
    )
    assert raw.status_code == 400
    assert raw.json() == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "max_tokens: a positive integer is required",
        },
    }


def test_anthropic_upstream_refusal_reaches_the_client_as_a_400(server: Server) -> None:
    with pytest.raises(anthropic.BadRequestError) as refused:
        client_for(server).messages.create(
            model="an-chat",
            max_tokens=5,
            messages=[{"role": "user", "content": [{"type": "document", "source": {}}]}],
        )
    assert "messages[0].content[0].type" in str(refused.value)
