"""The official ``openai`` client's Responses and legacy completions calls, on any model."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.conftest import ADMIN_KEY, Server

MODELS = ["oa-chat", "an-chat"]
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}

# A real server starts first: on a busy machine that alone may take minutes.
pytestmark = pytest.mark.timeout(600)


def client_for(server: Server, key: str = ADMIN_KEY) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0)


@pytest.mark.parametrize("model", MODELS)
def test_responses_continue_a_conversation_with_previous_response_id(
    server: Server, model: str
) -> None:
    client = client_for(server)
    first = client.responses.create(model=model, instructions="Be brief", input="hello")
    assert first.status == "completed"
    assert first.output_text == "system=Be brief turns=1 images=0 said=hello"
    assert first.usage is not None and first.usage.input_tokens_details.cached_tokens == 4
    second = client.responses.create(model=model, input="and again", previous_response_id=first.id)
    # The earlier turn and its reply came from the Context Mesh: three turns now.
    assert second.output_text == "system=- turns=3 images=0 said=and again"
    assert second.previous_response_id == first.id
    stored = client.responses.retrieve(second.id)
    assert stored.output_text == second.output_text


@pytest.mark.parametrize("model", MODELS)
def test_streamed_responses_and_their_continuation(server: Server, model: str) -> None:
    client = client_for(server)
    events = list(client.responses.create(model=model, input="stream me", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == "system=- turns=1 images=0 said=stream me"
    assert [e.sequence_number for e in events] == list(range(1, len(events) + 1))
    final = events[-1].response  # type: ignore[union-attr]
    assert final.output_text == text
    follow = client.responses.create(
        model=model, input="more", previous_response_id=final.id, stream=True
    )
    done = next(e for e in follow if e.type == "response.completed")
    assert done.response.output_text == "system=- turns=3 images=0 said=more"


@pytest.mark.parametrize("model", MODELS)
def test_responses_call_functions_and_take_their_output(server: Server, model: str) -> None:
    client = client_for(server)
    first = client.responses.create(model=model, input="weather in Paris?", tools=[WEATHER])
    call = next(item for item in first.output if item.type == "function_call")
    assert call.name == "get_weather" and call.arguments == '{"city":"Paris"}'
    second = client.responses.create(
        model=model,
        previous_response_id=first.id,
        tools=[WEATHER],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
    )
    assert second.output_text == "the tool said sunny"
    streamed = list(
        client.responses.create(model=model, input="weather?", tools=[WEATHER], stream=True)
    )
    args = "".join(e.delta for e in streamed if e.type == "response.function_call_arguments.delta")
    assert args == '{"city":"Paris"}'


def test_another_tenants_response_is_not_found(server: Server) -> None:
    first = client_for(server).responses.create(model="oa-chat", input="mine")
    with server.client() as http:
        made = http.post("/v1/admin/keys", json={"tenant": "other", "scopes": ["inference"]}).json()
    other = client_for(server, made["key"])
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(first.id)
    with pytest.raises(openai.NotFoundError):
        client_for(server).responses.retrieve("resp_nothing_ses_nothing")
    raw = httpx.post(
        server.url + "/v1/responses",
        headers={"authorization": f"Bearer {ADMIN_KEY}"},
        json={"model": "oa-chat", "input": "x", "previous_response_id": first.id + "x"},
    )
    assert raw.status_code == 404 and raw.json()["error"]["type"] == "not_found_error"


@pytest.mark.parametrize("model", MODELS)
def test_legacy_completions_plain_and_streamed(server: Server, model: str) -> None:
    client = client_for(server)
    done = client.completions.create(model=model, prompt="complete me", max_tokens=50)
    assert done.object == "text_completion"
    assert done.choices[0].text == "system=- turns=1 images=0 said=complete me"
    assert done.choices[0].finish_reason == "stop"
    assert done.usage is not None and done.usage.completion_tokens == 5
    chunks = list(
        client.completions.create(
            model=model, prompt="stream me", stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == "system=- turns=1 images=0 said=stream me"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5
    with pytest.raises(openai.BadRequestError) as bad:
        client.completions.create(model=model, prompt=["a", "b"])
    assert bad.value.body["param"] == "prompt"  # type: ignore[index]
