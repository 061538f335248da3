"""Translations: CPU per chat request spent translating, per vendor, against pass-through.

In-process, single core: each cell runs the pure functions one request needs (the request
out, the answer back, or a 20-event stream back) on a typical chat with a system prompt,
two turns and one tool, and reports CPU microseconds per request. The pass-through row is
what the OpenAI provider does to the same request (re-encode with the upstream model name,
read usage and text from the answer). Compare the added microseconds with the gateway's own
CPU per chat request in the gateway section.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import orjson

from bench.procs import QUICK
from meshgate.models.providers import bedrock, gemini, openai
from meshgate.models.translate import anthropic, anthropic_stream, completions, responses

TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
REQUEST = {
    "model": "chat",
    "max_tokens": 256,
    "messages": [
        {"role": "system", "content": "You are a helpful assistant. Answer briefly."},
        {"role": "user", "content": "What is the weather like in Paris today? " * 4},
        {"role": "assistant", "content": "Let me check that for you."},
        {"role": "user", "content": "Please also tell me about tomorrow."},
    ],
    "tools": [TOOL],
}
BODY = orjson.dumps(REQUEST)
TEXT = "It is sunny in Paris today with a light breeze, and tomorrow looks much the same. "
OPENAI_ANSWER = orjson.dumps(
    {
        "id": "c",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": TEXT}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 80, "completion_tokens": 20, "total_tokens": 100},
    }
)
MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "m",
    "content": [{"type": "text", "text": TEXT}],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 80, "output_tokens": 20},
}
GEMINI = {
    "candidates": [
        {"content": {"role": "model", "parts": [{"text": TEXT}]}, "finishReason": "STOP"}
    ],
    "usageMetadata": {"promptTokenCount": 80, "candidatesTokenCount": 20},
}
CONVERSE = {
    "output": {"message": {"role": "assistant", "content": [{"text": TEXT}]}},
    "stopReason": "end_turn",
    "usage": {"inputTokens": 80, "outputTokens": 20},
}
WORDS = TEXT.split(" ")[:20]


def anthropic_events() -> list[bytes]:
    def ev(kind: str, data: dict[str, object]) -> bytes:
        return f"event: {kind}\ndata: ".encode() + orjson.dumps({"type": kind, **data}) + b"\n\n"

    start = {**MESSAGE, "content": [], "stop_reason": None}
    out = [
        ev("message_start", {"message": start}),
        ev("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
    ]
    out += [
        ev("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": w}})
        for w in WORDS
    ]
    out += [
        ev("content_block_stop", {"index": 0}),
        ev("message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 20}}),
        ev("message_stop", {}),
    ]
    return out


def openai_chunks() -> list[bytes]:
    def chunk(delta: dict[str, object], finish: str | None = None) -> bytes:
        event = {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return b"data: " + orjson.dumps(event) + b"\n\n"

    return [chunk({"content": w}) for w in WORDS] + [chunk({}, "stop"), b"data: [DONE]\n\n"]


def per_request(work: Callable[[], object]) -> float:
    """CPU microseconds per call, best of three runs."""
    n = 300 if QUICK else 3000
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for _ in range(n):
            work()
        best = min(best, (time.process_time() - started) / n * 1e6)
    return best


def cells() -> dict[str, Callable[[], object]]:
    a_events, o_chunks = anthropic_events(), openai_chunks()
    messages_request = {
        "model": "chat",
        "max_tokens": 256,
        "system": "Answer briefly.",
        "messages": [m for m in REQUEST["messages"] if m["role"] != "system"],
    }  # type: ignore[index]

    def passthrough() -> object:
        openai.request_body(BODY, REQUEST, "up", False)
        return openai.read_reply(OPENAI_ANSWER)

    def anthropic_provider() -> object:
        orjson.dumps(anthropic.chat_to_messages(REQUEST, "claude"))
        return orjson.dumps(anthropic.message_to_chat(orjson.loads(orjson.dumps(MESSAGE)), "m"))

    def anthropic_stream_back() -> object:
        t = anthropic_stream.MessageEventsToChat("m", True)
        return [t.feed(e) for e in a_events]

    def gemini_provider() -> object:
        orjson.dumps(gemini.request_body(REQUEST))
        return orjson.dumps(gemini.answer_to_chat(orjson.loads(orjson.dumps(GEMINI)), "m"))

    def bedrock_provider() -> object:
        orjson.dumps(bedrock.request_body(REQUEST))
        return orjson.dumps(bedrock.answer_to_chat(orjson.loads(orjson.dumps(CONVERSE)), "m"))

    def messages_route() -> object:
        orjson.dumps(anthropic.messages_to_chat(messages_request))
        return orjson.dumps(anthropic.chat_to_message(orjson.loads(OPENAI_ANSWER), "m"))

    def messages_stream() -> object:
        t = anthropic_stream.ChatToMessageEvents("m", "msg_1")
        return [t.feed(c) for c in o_chunks]

    def responses_route() -> object:
        new = responses.input_messages({"input": "What is the weather like in Paris?"})
        responses.responses_to_chat({"model": "m"}, REQUEST["messages"], new)  # type: ignore[arg-type]
        answer = orjson.loads(OPENAI_ANSWER)
        output = responses.output_of(answer["choices"][0]["message"], "msg_1")
        return orjson.dumps(
            responses.response_object("resp_1", {"model": "m"}, output, "stop", answer["usage"])
        )

    def completions_route() -> object:
        completions.completions_to_chat({"model": "m", "prompt": "Say hello", "max_tokens": 5})
        return orjson.dumps(completions.completion_of(orjson.loads(OPENAI_ANSWER), "m"))

    return {
        "OpenAI pass-through (baseline)": passthrough,
        "anthropic provider: request + answer": anthropic_provider,
        "anthropic provider: 20-event stream": anthropic_stream_back,
        "gemini provider: request + answer": gemini_provider,
        "bedrock provider: request + answer": bedrock_provider,
        "POST /v1/messages: request + answer": messages_route,
        "POST /v1/messages: 20-chunk stream": messages_stream,
        "POST /v1/responses: request + answer": responses_route,
        "POST /v1/completions: request + answer": completions_route,
    }


def run() -> str:
    rows = {name: per_request(work) for name, work in cells().items()}
    base = rows["OpenAI pass-through (baseline)"]
    lines = [
        "## translations",
        "",
        "CPU per request spent in the pure translation functions (in-process, best of 3).",
        "'Added' is the translation's cost above the pass-through's own parsing.",
        "",
        "| path | CPU µs/request | added µs |",
        "|---|---|---|",
    ]
    for name, micros in rows.items():
        added = "" if name.startswith("OpenAI") else f"{micros - base:+.1f}"
        lines.append(f"| {name} | {micros:.1f} | {added} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(run())
