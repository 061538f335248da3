"""A fake Gemini API answering from the shared brain.

``POST /{version}/models/{model}:generateContent`` and ``:streamGenerateContent?alt=sse``
with the key in ``x-goog-api-key``; GenerateContentResponse bodies (candidates, finishReason,
usageMetadata); a stream is one ``data:`` event per GenerateContentResponse; errors are
``{"error": {"code", "message", "status"}}``.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from tests.models.vendors.brain import Answer, Ask, Turn, answer
from tests.models.vendors.fakes import FakeVendor

API_KEY = "gemini-test-key"
FINISH = {"end": "STOP", "tool": "STOP", "length": "MAX_TOKENS"}
STATUS = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}


def read_ask(body: dict[str, Any]) -> Ask:
    system = body.get("systemInstruction")
    system_text = "".join(p["text"] for p in system["parts"]) if system else None
    turns = []
    for content in body["contents"]:
        parts = content["parts"]
        responses = [p["functionResponse"] for p in parts if "functionResponse" in p]
        for r in responses:
            turns.append(Turn("tool", tool_result=r["response"]["content"]))
        if len(responses) < len(parts):
            text = "".join(p.get("text", "") for p in parts)
            images = sum("inlineData" in p or "fileData" in p for p in parts)
            role = "assistant" if content.get("role") == "model" else "user"
            turns.append(Turn(role, text, images))
    tools = [d["name"] for t in body.get("tools") or () for d in t["functionDeclarations"]]
    config = body.get("generationConfig") or {}
    json_mode = config.get("responseMimeType") == "application/json"
    return Ask(system_text, turns, tools, None, json_mode, config.get("maxOutputTokens"))


def usage_of(a: Answer) -> dict[str, Any]:
    return {
        "promptTokenCount": a.input_tokens + a.cached_tokens,
        "candidatesTokenCount": a.output_tokens,
        "cachedContentTokenCount": a.cached_tokens,
        "totalTokenCount": a.input_tokens + a.cached_tokens + a.output_tokens,
    }


def response_of(
    parts: list[dict[str, Any]], finish: str | None, a: Answer | None
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    body: dict[str, Any] = {
        "candidates": [candidate],
        "modelVersion": "gemini-fake",
        "responseId": "fake-response",
    }
    if a is not None:
        body["usageMetadata"] = usage_of(a)
    return body


class FakeGemini(FakeVendor):
    vendor = "gemini"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/{version}/models/{target}", self.generate)

    def error(self, status: int, message: str) -> web.Response:
        body = {
            "error": {"code": status, "message": message, "status": STATUS.get(status, "UNKNOWN")}
        }
        return self.json(body, status)

    async def generate(self, request: web.Request) -> web.StreamResponse:
        body = await self.record(request)
        _, _, method = request.match_info["target"].partition(":")
        if request.headers.get("x-goog-api-key") != API_KEY:
            return self.error(403, "API key not valid. Please pass a valid API key.")
        if self.fail_status is not None:
            return self.error(self.fail_status, f"{self.name} is failing")
        a = answer(read_ask(body))
        parts: list[dict[str, Any]] = [{"text": a.text}] if a.text else []
        if a.tool:
            parts.append({"functionCall": {"name": a.tool[1], "args": a.tool[2]}})
        if method == "generateContent":
            return self.json(response_of(parts, FINISH[a.stop], a))
        if method != "streamGenerateContent" or request.query.get("alt") != "sse":
            return self.error(404, f"unknown method {method}")
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        pieces: list[list[dict[str, Any]]] = [[{"text": p}] for p in a.pieces()]
        if a.tool:
            pieces.append([parts[-1]])
        for k, piece in enumerate(pieces):
            last = k == len(pieces) - 1
            event = response_of(piece, FINISH[a.stop] if last else None, a if last else None)
            await response.write(b"data: " + orjson.dumps(event) + b"\r\n\r\n")
        await response.write_eof()
        return response
