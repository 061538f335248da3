"""The providers' pure translations, and their transport seam (an HTTP transport double)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import orjson
import pytest

from meshgate.models.config import OpenAIProvider, V2Provider
from meshgate.models.errors import UpstreamRateLimited, UpstreamRejected, UpstreamUnavailable
from meshgate.models.providers.base import Call
from meshgate.models.providers.openai import (
    OpenAIChat,
    StreamMeter,
    read_reply,
    request_body,
    upstream_error,
)
from meshgate.models.providers.v2 import V2Model, infer_url
from meshgate.models.tensors import decode_response, encode_request, encode_response
from meshgate.security.credentials import EnvCredential


def test_the_callers_bytes_go_upstream_unchanged_unless_something_changed() -> None:
    body = b'{"model": "support-chat",  "messages": []}'
    request = orjson.loads(body)
    assert request_body(body, request, None, False) is body
    renamed = orjson.loads(request_body(body, request, "gpt-x", False))
    assert renamed == {"model": "gpt-x", "messages": []} and request["model"] == "support-chat"
    request["messages"] = [{"role": "system", "content": "ctx"}]
    assert orjson.loads(request_body(body, request, None, True))["messages"][0]["content"] == "ctx"


def test_replies_and_errors_are_read_in_openai_terms() -> None:
    reply = {"choices": [{"message": {"content": "hi"}}], "usage": {"total_tokens": 9}}
    assert read_reply(orjson.dumps(reply)) == (9, "hi")
    assert read_reply(b"not json") == (0, None)
    error = orjson.dumps({"error": {"message": "too long", "code": "context_length_exceeded"}})
    rejected = upstream_error(400, error)
    assert isinstance(rejected, UpstreamRejected) and rejected.detail == "too long"
    assert rejected.extra["code"] == "context_length_exceeded"
    assert isinstance(upstream_error(429, b""), UpstreamRateLimited)
    assert isinstance(upstream_error(503, b"<html>"), UpstreamUnavailable)


def test_stream_meter_reads_events_split_across_chunks() -> None:
    events = [
        {"choices": [{"delta": {"content": "Hel"}}]},
        {"choices": [{"delta": {"content": "lo"}}]},
        {"choices": [], "usage": {"total_tokens": 21}},
    ]
    stream = b"".join(b"data: " + orjson.dumps(e) + b"\n\n" for e in events) + b"data: [DONE]\n\n"
    meter = StreamMeter(collect=True)
    for i in range(0, len(stream), 7):  # chunk boundaries fall anywhere
        meter.feed(stream[i : i + 7])
    assert (meter.text, meter.tokens) == ("Hello", 21)
    counting = StreamMeter(collect=False)
    counting.feed(stream[:-14])
    assert counting.usage == 21


@dataclass
class Reply:
    status: int
    body: bytes

    async def read(self) -> bytes:
        return self.body

    async def chunks(self) -> AsyncIterator[bytes]:
        yield self.body

    def close(self) -> None:
        pass

    def release(self) -> None:
        pass


@dataclass
class RecordingTransport:
    """The HTTP seam of the providers: answers from a table and keeps what was sent."""

    replies: dict[str, Reply]
    sent: list[tuple[str, bytes, dict[str, str]]] = field(default_factory=list)

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], read_timeout: float
    ) -> Reply:
        self.sent.append((url, body, dict(headers)))
        return self.replies[url]

    async def close(self) -> None:
        pass


async def test_openai_provider_sends_key_and_trace_headers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("UPSTREAM_KEY", "sk-upstream")
    answer = {"choices": [{"message": {"content": "ok"}}], "usage": {"total_tokens": 3}}
    transport = RecordingTransport(
        {"http://up/v1/chat/completions": Reply(200, orjson.dumps(answer))}
    )
    spec = OpenAIProvider(type="openai", base_url="http://up/v1/", api_key_env="UPSTREAM_KEY")
    chat = OpenAIChat(spec, transport, collect_text=True, credential=EnvCredential("UPSTREAM_KEY"))
    body = b'{"model": "m", "messages": []}'
    reply = await chat.chat(body, orjson.loads(body), Call(headers={"traceparent": "00-a-b-01"}))
    assert (reply.text, reply.tokens, reply.body) == ("ok", 3, orjson.dumps(answer))
    url, sent, headers = transport.sent[0]
    assert url == "http://up/v1/chat/completions"
    assert sent is body
    assert headers["authorization"] == "Bearer sk-upstream"
    assert headers["traceparent"] == "00-a-b-01"


async def test_v2_provider_translates_tensors_both_ways() -> None:
    spec = V2Provider(type="v2", url="http://triton:8000/", model="m", version="3")
    assert infer_url(spec) == "http://triton:8000/v2/models/m/versions/3/infer"
    outputs = {"y": np.array([[1.5, 2.0]], dtype=np.float32)}
    answer, _ = encode_response("m", "3", "id", outputs, set())
    transport = RecordingTransport({infer_url(spec): Reply(200, answer)})
    result = await V2Model(spec, transport).infer({"x": np.array([1, 2], dtype=np.int64)}, Call())
    assert result["y"].dtype == np.float32 and result["y"].tolist() == [[1.5, 2.0]]
    sent = orjson.loads(transport.sent[0][1])
    assert sent == {"inputs": [{"name": "x", "datatype": "INT64", "shape": [2], "data": [1, 2]}]}
    assert decode_response(answer)["y"].shape == (1, 2)
    assert (
        orjson.loads(encode_request({"s": np.array(["a"], dtype=object)}))["inputs"][0]["datatype"]
        == "BYTES"
    )


async def test_v2_provider_maps_upstream_failures() -> None:
    spec = V2Provider(type="v2", url="http://triton:8000", model="m")
    transport = RecordingTransport({infer_url(spec): Reply(503, b'{"error": "loading"}')})
    with pytest.raises(UpstreamUnavailable, match="loading"):
        await V2Model(spec, transport).infer({"x": np.zeros(1)}, Call())
