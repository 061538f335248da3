"""Google's Gemini API (generateContent, streamGenerateContent) as a chat provider.

Pure translation first (request, answer, stream events, errors), the I/O at the end. Gemini
sends a function call whole, so a stream carries each call as one tool-call delta.
"""

from __future__ import annotations

import mimetypes
from typing import Any
from urllib.parse import quote

import orjson

from meshgate.errors import MeshgateError
from meshgate.models.provider_specs import GeminiProvider
from meshgate.models.providers.base import Call, JsonReply
from meshgate.models.providers.http import HttpTransport
from meshgate.models.providers.translated import (
    TranslatedStream,
    VendorChat,
    json_or_none,
    vendor_error,
)
from meshgate.models.translate.chat import (
    DONE,
    Finish,
    Json,
    SseParser,
    ToolCall,
    Unsupported,
    Usage,
    arguments_of,
    chunk,
    completion,
    data_url,
    error_event,
    json_schema_of,
    max_tokens_of,
    parts_of,
    refuse_many,
    stops_of,
    system_text,
    text_of,
    tool_call,
    tools_of,
    usage,
    usage_chunk,
)
from meshgate.security.credentials import UpstreamCredential

VENDOR = "gemini"
FILTERED = frozenset(
    {"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"}
)

# --- pure translation ----------------------------------------------------------------------


def request_body(request: Json) -> Json:
    refuse_many(request, VENDOR)
    messages = request["messages"]
    names = {
        c.get("id"): (c.get("function") or {}).get("name")
        for m in messages
        for c in m.get("tool_calls") or ()
    }
    contents: list[Json] = []
    for i, m in enumerate(messages):
        if m.get("role") in ("system", "developer"):
            continue
        content = _content(m, f"messages[{i}]", names)
        if contents and contents[-1]["role"] == content["role"]:
            contents[-1]["parts"] += content["parts"]
        else:
            contents.append(content)
    body: Json = {"contents": contents}
    if (system := system_text(messages)) is not None:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    if tools := tools_of(request):
        declarations = [
            {
                "name": t["name"],
                "description": t["description"],
                "parametersJsonSchema": t["parameters"],
            }
            for t in tools
        ]
        body["tools"] = [{"functionDeclarations": declarations}]
    if (config := _tool_config(request.get("tool_choice"))) is not None:
        body["toolConfig"] = config
    generation: Json = {}
    if (max_tokens := max_tokens_of(request)) is not None:
        generation["maxOutputTokens"] = max_tokens
    for name, key in (("temperature", "temperature"), ("top_p", "topP"), ("top_k", "topK")):
        if request.get(name) is not None:
            generation[key] = request[name]
    if stops := stops_of(request):
        generation["stopSequences"] = stops
    if (schema := json_schema_of(request)) is not None:
        generation["responseMimeType"] = "application/json"
        generation["responseJsonSchema"] = schema
    if generation:
        body["generationConfig"] = generation
    return body


def _content(message: Json, where: str, names: dict[Any, Any]) -> Json:
    role = message.get("role")
    if role == "tool":
        name = names.get(message.get("tool_call_id"))
        if name is None:
            raise Unsupported(VENDOR, "a tool result without its call", f"{where}.tool_call_id")
        response = {"name": name, "response": {"content": text_of(message.get("content"))}}
        return {"role": "user", "parts": [{"functionResponse": response}]}
    if role == "assistant":
        parts: list[Json] = []
        if text := text_of(message.get("content")):
            parts.append({"text": text})
        for k, call in enumerate(message.get("tool_calls") or ()):
            args = arguments_of(call, f"{where}.tool_calls[{k}]")
            parts.append({"functionCall": {"name": call["function"]["name"], "args": args}})
        return {"role": "model", "parts": parts}
    parts = []
    for j, part in enumerate(parts_of(message.get("content"))):
        if part.get("type") == "text":
            parts.append({"text": part.get("text", "")})
        elif part.get("type") == "image_url":
            parts.append(_image(part, f"{where}.content[{j}]"))
        else:
            raise Unsupported(VENDOR, f"{part.get('type')!r} content", f"{where}.content[{j}]")
    return {"role": "user", "parts": parts}


def _image(part: Json, where: str) -> Json:
    url = str((part.get("image_url") or {}).get("url") or "")
    inline = data_url(url)
    if inline is not None:
        return {"inlineData": {"mimeType": inline[0], "data": inline[1]}}
    if not url.startswith("https://"):
        raise Unsupported(VENDOR, "image URLs other than https or data", where)
    mime = mimetypes.guess_type(url)[0] or "image/jpeg"
    return {"fileData": {"mimeType": mime, "fileUri": url}}


def _tool_config(choice: Any) -> Json | None:
    if choice is None:
        return None
    if choice in ("auto", "none", "required"):
        mode = {"auto": "AUTO", "none": "NONE", "required": "ANY"}[choice]
        return {"functionCallingConfig": {"mode": mode}}
    name = (choice.get("function") or {}).get("name") if isinstance(choice, dict) else None
    if not name:
        raise Unsupported(VENDOR, "this tool_choice", "tool_choice")
    return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}


def usage_of(meta: Json | None) -> Usage:
    meta = meta or {}
    output = int(meta.get("candidatesTokenCount") or 0) + int(meta.get("thoughtsTokenCount") or 0)
    cached = int(meta.get("cachedContentTokenCount") or 0)
    return usage(int(meta.get("promptTokenCount") or 0), output, cached)


def _finish(reason: str | None, calls: bool) -> Finish:
    if reason == "MAX_TOKENS":
        return "length"
    if reason in FILTERED:
        return "content_filter"
    return "tool_calls" if calls else "stop"


def _parts(answer: Json) -> tuple[list[Json], str | None]:
    candidates = answer.get("candidates") or []
    if not candidates:
        blocked = (answer.get("promptFeedback") or {}).get("blockReason")
        return [], "SAFETY" if blocked else None
    first = candidates[0]
    return list((first.get("content") or {}).get("parts") or []), first.get("finishReason")


def answer_to_chat(answer: Json, model: str) -> Json:
    parts, reason = _parts(answer)
    texts = [p["text"] for p in parts if "text" in p and not p.get("thought")]
    calls: list[ToolCall] = [
        tool_call(
            p["functionCall"].get("id") or f"call_{k}",
            p["functionCall"].get("name", ""),
            p["functionCall"].get("args"),
        )
        for k, p in enumerate(q for q in parts if "functionCall" in q)
    ]
    text = "".join(texts) if texts or not calls else None
    return completion(
        "chatcmpl-" + str(answer.get("responseId") or "gemini"),
        model,
        text,
        calls,
        _finish(reason, bool(calls)),
        usage_of(answer.get("usageMetadata")),
    )


def upstream_error(status: int, body: bytes) -> MeshgateError:
    """``{"error": {"code", "message", "status"}}``, its message kept."""
    data = json_or_none(body)
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, list) and error:  # some Google front ends wrap it in a list
        error = error[0].get("error") if isinstance(error[0], dict) else None
    if isinstance(error, dict):
        return vendor_error(
            status,
            f"gemini: {error.get('message') or status}",
            str(error.get("status") or "") or None,
        )
    return vendor_error(status, f"gemini answered {status}")


class StreamToChat:
    """``alt=sse`` events of streamGenerateContent to chat completion chunks."""

    def __init__(self, model: str, include_usage: bool):
        self.model = model
        self.include_usage = include_usage
        self.parser = SseParser()
        self.id = "chatcmpl-gemini"
        self.calls = 0
        self.parts: list[str] = []
        self.meta: Json = {}
        self.reason: str | None = None
        self.started = False

    @property
    def usage(self) -> Usage:
        return usage_of(self.meta)

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def feed(self, data: bytes) -> bytes:
        out: list[bytes] = []
        for _, payload in self.parser.feed(data):
            answer = json_or_none(payload)
            if isinstance(answer, dict):
                self._event(answer, out)
        return b"".join(out)

    def _event(self, answer: Json, out: list[bytes]) -> None:
        if "error" in answer:
            out.append(error_event(str((answer["error"] or {}).get("message")), code="upstream"))
            return
        if not self.started:
            self.started = True
            self.id = "chatcmpl-" + str(answer.get("responseId") or "gemini")
            out.append(chunk(self.id, self.model, {"role": "assistant", "content": ""}))
        parts, reason = _parts(answer)
        for p in parts:
            if "text" in p and not p.get("thought"):
                self.parts.append(p["text"])
                out.append(chunk(self.id, self.model, {"content": p["text"]}))
            elif "functionCall" in p:
                fn = p["functionCall"]
                call = {
                    "index": self.calls,
                    "id": fn.get("id") or f"call_{self.calls}",
                    "type": "function",
                    "function": {
                        "name": fn.get("name"),
                        "arguments": orjson.dumps(fn.get("args") or {}).decode(),
                    },
                }
                self.calls += 1
                out.append(chunk(self.id, self.model, {"tool_calls": [call]}))
        if answer.get("usageMetadata"):
            self.meta = answer["usageMetadata"]
        if reason:
            self.reason = reason

    def end(self) -> bytes:
        out: list[bytes] = []
        for _, payload in self.parser.end():
            answer = json_or_none(payload)
            if isinstance(answer, dict):
                self._event(answer, out)
        finish = _finish(self.reason, self.calls > 0)
        out.append(chunk(self.id, self.model, {}, finish))
        if self.include_usage:
            out.append(usage_chunk(self.id, self.model, self.usage))
        out.append(DONE)
        return b"".join(out)


# --- I/O -----------------------------------------------------------------------------------


class GeminiChat(VendorChat):
    kind = "gemini"

    def __init__(
        self, spec: GeminiProvider, transport: HttpTransport, credential: UpstreamCredential | None
    ):
        super().__init__(transport, spec.modalities, upstream_error, credential, "x-goog-api-key")
        base = f"{spec.base_url.rstrip('/')}/{spec.api_version}/models/{quote(spec.model)}"
        self.plain_url = base + ":generateContent"
        self.stream_url = base + ":streamGenerateContent?alt=sse"
        self.headers: dict[str, str] = {}

    async def chat(self, body: bytes, request: dict[str, Any], call: Call) -> JsonReply:
        self.check(request)
        response = await self.send(self.plain_url, request_body(request), self.headers, call)
        answer = json_or_none(await response.read()) or {}
        return self.reply(answer_to_chat(answer, request["model"]))

    async def chat_stream(
        self, body: bytes, request: dict[str, Any], call: Call
    ) -> TranslatedStream:
        self.check(request)
        response = await self.send(self.stream_url, request_body(request), self.headers, call)
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        return TranslatedStream(response, StreamToChat(request["model"], include_usage))
