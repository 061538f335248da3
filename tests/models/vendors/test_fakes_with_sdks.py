"""Each fake vendor, driven by that vendor's official SDK: the fakes speak the real wire."""

from __future__ import annotations

import anthropic
import boto3
import botocore.exceptions
import openai
import pytest
from google import genai
from google.genai import types as genai_types

from tests.models.vendors import fake_anthropic, fake_bedrock, fake_gemini
from tests.models.vendors.conftest import BEDROCK_MODEL, Fakes
from tests.models.vendors.fake_openai_wire import FakeAzure

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


FUNCTION = {
    "name": "get_weather",
    "description": "Weather of a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def test_google_genai_reads_the_fake_plain_streamed_and_with_tools(fakes: Fakes) -> None:
    client = genai.Client(
        api_key=fake_gemini.API_KEY, http_options=genai_types.HttpOptions(base_url=fakes.gemini.url)
    )
    config = genai_types.GenerateContentConfig(system_instruction="Be brief")
    answer = client.models.generate_content(model="gemini-fake", contents="hello", config=config)
    assert answer.text == "system=Be brief turns=1 images=0 said=hello"
    assert answer.usage_metadata is not None
    assert answer.usage_metadata.cached_content_token_count == 4
    pieces = client.models.generate_content_stream(model="gemini-fake", contents="hi there")
    assert "".join(p.text or "" for p in pieces) == "system=- turns=1 images=0 said=hi there"
    tool = genai_types.Tool(
        function_declarations=[
            genai_types.FunctionDeclaration(
                name="get_weather",
                description="Weather",
                parameters_json_schema=FUNCTION["parameters"],
            )
        ]
    )
    called = client.models.generate_content(
        model="gemini-fake",
        contents="weather please",
        config=genai_types.GenerateContentConfig(tools=[tool]),
    )
    assert called.function_calls is not None
    assert called.function_calls[0].name == "get_weather"
    assert called.function_calls[0].args == {"city": "Paris"}


def test_azure_openai_client_reads_the_fake_plain_and_streamed(fakes: Fakes) -> None:
    client = openai.AzureOpenAI(
        azure_endpoint=fakes.azure.url,
        api_key=FakeAzure.api_key,
        api_version="2024-10-21",
        max_retries=0,
    )
    done = client.chat.completions.create(
        model="gpt-fake-eu", messages=[{"role": "user", "content": "hello"}]
    )
    assert done.choices[0].message.content == "system=- turns=1 images=0 said=hello"
    assert fakes.azure.paths[-1] == (
        "/openai/deployments/gpt-fake-eu/chat/completions?api-version=2024-10-21"
    )
    chunks = client.chat.completions.create(
        model="gpt-fake-eu", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "system=- turns=1 images=0 said=hi"
    wrong = openai.AzureOpenAI(
        azure_endpoint=fakes.azure.url, api_key="wrong", api_version="2024-10-21", max_retries=0
    )
    with pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(model="d", messages=[{"role": "user", "content": "x"}])


def test_boto3_reads_the_fake_converse_and_its_event_stream(fakes: Fakes) -> None:
    client = boto3.client(
        "bedrock-runtime",
        region_name=fake_bedrock.REGION,
        endpoint_url=fakes.bedrock.url,
        aws_access_key_id=fake_bedrock.ACCESS_KEY,
        aws_secret_access_key=fake_bedrock.SECRET_KEY,
    )
    done = client.converse(
        modelId=BEDROCK_MODEL,
        system=[{"text": "Be brief"}],
        messages=[{"role": "user", "content": [{"text": "hello"}]}],
    )
    assert done["output"]["message"]["content"][0]["text"] == (
        "system=Be brief turns=1 images=0 said=hello"
    )
    assert done["usage"]["cacheReadInputTokens"] == 4
    tools = {
        "tools": [
            {
                "toolSpec": {
                    "name": "get_weather",
                    "description": "Weather",
                    "inputSchema": {"json": FUNCTION["parameters"]},
                }
            }
        ]
    }
    stream = client.converse_stream(
        modelId=BEDROCK_MODEL,
        toolConfig=tools,
        messages=[{"role": "user", "content": [{"text": "weather please"}]}],
    )["stream"]
    events = list(stream)
    args = "".join(
        e["contentBlockDelta"]["delta"]["toolUse"]["input"]
        for e in events
        if "contentBlockDelta" in e
    )
    assert args == '{"city":"Paris"}'
    assert events[-2]["messageStop"]["stopReason"] == "tool_use"
    assert events[-1]["metadata"]["usage"]["outputTokens"] == 6
    # A wrong secret fails the fake's signature check: it checks what boto3 signed.
    forged = boto3.client(
        "bedrock-runtime",
        region_name=fake_bedrock.REGION,
        endpoint_url=fakes.bedrock.url,
        aws_access_key_id=fake_bedrock.ACCESS_KEY,
        aws_secret_access_key="not-the-secret",
    )
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        forged.converse(
            modelId=BEDROCK_MODEL, messages=[{"role": "user", "content": [{"text": "x"}]}]
        )
    assert refused.value.response["Error"]["Code"] == "InvalidSignatureException"
