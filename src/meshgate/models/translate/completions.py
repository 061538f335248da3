"""Legacy completions (``POST /v1/completions``) and the chat shape (pure functions)."""

from __future__ import annotations

import time

import orjson

from meshgate.errors import BadRequest
from meshgate.models.translate.chat import Json, SseParser
from meshgate.models.translate.checks import CHAT_INTEGERS, CHAT_NUMBERS, check_numbers

PASSED = (
    "max_tokens",
    "temperature",
    "top_p",
    "stop",
    "user",
    "seed",
    "presence_penalty",
    "frequency_penalty",
)


def completions_to_chat(request: Json) -> Json:
    """The prompt becomes one user turn; several prompts or an echo are refused by name."""
    model = request.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("'model' is required and must be a string", param="model")
    prompt = request.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise BadRequest("'prompt' must be a string (one prompt per request)", param="prompt")
    for name in ("echo", "suffix", "logprobs", "best_of"):
        if request.get(name):
            raise BadRequest(f"'{name}' is not supported by chat models", param=name)
    check_numbers(request, CHAT_INTEGERS, CHAT_NUMBERS)
    if isinstance(request.get("n"), int) and request["n"] > 1:
        raise BadRequest("'n' above 1 is not supported", param="n")
    chat: Json = {"model": model, "messages": [{"role": "user", "content": prompt}]}
    chat.update({k: request[k] for k in PASSED if request.get(k) is not None})
    if request.get("stream") is True:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat


def completion_of(answer: Json, model: str) -> Json:
    choice = (answer.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    return {
        "id": "cmpl-" + str(answer.get("id") or "").removeprefix("chatcmpl-"),
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "text": message.get("content") or "",
                "logprobs": None,
                "finish_reason": choice.get("finish_reason") or "stop",
            }
        ],
        "usage": answer.get("usage"),
    }


class ChatToCompletionChunks:
    """Chat completion chunks to legacy completion chunks; usage passes on as it came."""

    def __init__(self, model: str, completion_id: str, include_usage: bool):
        self.model = model
        self.id = completion_id
        self.include_usage = include_usage
        self.parser = SseParser()

    def _chunk(self, text: str, finish: str | None, usage: Json | None = None) -> bytes:
        event: Json = {
            "id": self.id,
            "object": "text_completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": []
            if usage
            else [{"index": 0, "text": text, "logprobs": None, "finish_reason": finish}],
        }
        if usage:
            event["usage"] = usage
        return b"data: " + orjson.dumps(event) + b"\n\n"

    def feed(self, data: bytes) -> bytes:
        out = []
        for _, payload in self.parser.feed(data):
            if payload == b"[DONE]":
                out.append(b"data: [DONE]\n\n")
                continue
            try:
                event = orjson.loads(payload)
            except orjson.JSONDecodeError:
                continue
            if "error" in event:
                out.append(b"data: " + payload + b"\n\n")
                continue
            if event.get("usage") and self.include_usage:
                out.append(self._chunk("", None, event["usage"]))
            for choice in event.get("choices") or ():
                text = (choice.get("delta") or {}).get("content") or ""
                if text or choice.get("finish_reason"):
                    out.append(self._chunk(text, choice.get("finish_reason")))
        return b"".join(out)
