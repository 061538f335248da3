"""Amazon Bedrock's Converse and ConverseStream APIs as a chat provider, signed with SigV4.

Pure translation first (request, answer, stream events, errors), the I/O at the end.
ConverseStream answers in AWS's binary event-stream framing, decoded with botocore's parser;
requests are signed with botocore's SigV4 signer. Converse has no JSON output mode, no
``top_k`` and no image URLs: asking for them through Bedrock is a 400 naming the field.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson
import yarl

from meshgate.errors import MeshgateError
from meshgate.models.errors import UpstreamUnavailable
from meshgate.models.provider_specs import BedrockProvider
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

VENDOR = "bedrock"
STOP_TO_FINISH: dict[str, Finish] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/gif": "gif", "image/webp": "webp"}

# --- pure translation ----------------------------------------------------------------------


def request_body(request: Json) -> Json:
    refuse_many(request, VENDOR)
    if json_schema_of(request) is not None:
        raise Unsupported(VENDOR, "JSON output (response_format)", "response_format")
    if request.get("top_k") is not None:
        raise Unsupported(VENDOR, "top_k", "top_k")
    messages = request["messages"]
    turns: list[Json] = []
    for i, m in enumerate(messages):
        if m.get("role") in ("system", "developer"):
            continue
        turn = _turn(m, f"messages[{i}]")
        if turns and turns[-1]["role"] == turn["role"]:
            turns[-1]["content"] += turn["content"]
        else:
            turns.append(turn)
    body: Json = {"messages": turns}
    if (system := system_text(messages)) is not None:
        body["system"] = [{"text": system}]
    config: Json = {}
    if (max_tokens := max_tokens_of(request)) is not None:
        config["maxTokens"] = max_tokens
    for name, key in (("temperature", "temperature"), ("top_p", "topP")):
        if request.get(name) is not None:
            config[key] = request[name]
    if stops := stops_of(request):
        config["stopSequences"] = stops
    if config:
        body["inferenceConfig"] = config
    if tools := tools_of(request):
        specs = [
            {
                "toolSpec": {
                    "name": t["name"],
                    "description": t["description"] or t["name"],
                    "inputSchema": {"json": t["parameters"]},
                }
            }
            for t in tools
        ]
        body["toolConfig"] = {"tools": specs}
        if (choice := _tool_choice(request.get("tool_choice"))) is not None:
            body["toolConfig"]["toolChoice"] = choice
    return body


def _turn(message: Json, where: str) -> Json:
    role = message.get("role")
    if role == "tool":
        result = {
            "toolUseId": message.get("tool_call_id"),
            "content": [{"text": text_of(message.get("content"))}],
        }
        return {"role": "user", "content": [{"toolResult": result}]}
    if role == "assistant":
        content: list[Json] = []
        if text := text_of(message.get("content")):
            content.append({"text": text})
        for k, call in enumerate(message.get("tool_calls") or ()):
            use = {
                "toolUseId": call.get("id"),
                "name": call["function"]["name"],
                "input": arguments_of(call, f"{where}.tool_calls[{k}]"),
            }
            content.append({"toolUse": use})
        return {"role": "assistant", "content": content}
    content = []
    for j, part in enumerate(parts_of(message.get("content"))):
        if part.get("type") == "text":
            content.append({"text": part.get("text", "")})
        elif part.get("type") == "image_url":
            content.append(_image(part, f"{where}.content[{j}]"))
        else:
            raise Unsupported(VENDOR, f"{part.get('type')!r} content", f"{where}.content[{j}]")
    return {"role": "user", "content": content}


def _image(part: Json, where: str) -> Json:
    inline = data_url(str((part.get("image_url") or {}).get("url") or ""))
    if inline is None:
        raise Unsupported(VENDOR, "image URLs (send the image as a data URL)", where)
    image_format = IMAGE_FORMATS.get(inline[0])
    if image_format is None:
        raise Unsupported(VENDOR, f"images of type {inline[0]}", where)
    return {"image": {"format": image_format, "source": {"bytes": inline[1]}}}


def _tool_choice(choice: Any) -> Json | None:
    if choice is None or choice == "auto":
        return None if choice is None else {"auto": {}}
    if choice == "required":
        return {"any": {}}
    name = (choice.get("function") or {}).get("name") if isinstance(choice, dict) else None
    if not name:
        raise Unsupported(VENDOR, f"tool_choice {choice!r}", "tool_choice")
    return {"tool": {"name": name}}


def usage_of(u: Json | None) -> Usage:
    u = u or {}
    cached = int(u.get("cacheReadInputTokens") or 0)
    prompt = int(u.get("inputTokens") or 0) + cached + int(u.get("cacheWriteInputTokens") or 0)
    return usage(prompt, int(u.get("outputTokens") or 0), cached)


def answer_to_chat(answer: Json, model: str) -> Json:
    content = ((answer.get("output") or {}).get("message") or {}).get("content") or []
    texts = [block["text"] for block in content if "text" in block]
    calls: list[ToolCall] = [
        tool_call(
            b["toolUse"].get("toolUseId", ""),
            b["toolUse"].get("name", ""),
            b["toolUse"].get("input"),
        )
        for b in content
        if "toolUse" in b
    ]
    finish = STOP_TO_FINISH.get(answer.get("stopReason") or "end_turn", "stop")
    text = "".join(texts) if texts or not calls else None
    return completion("chatcmpl-bedrock", model, text, calls, finish, usage_of(answer.get("usage")))


def upstream_error(status: int, body: bytes) -> MeshgateError:
    """``{"message": ...}``; the status tells the kind (429 throttling, 400 validation)."""
    data = json_or_none(body)
    data = data if isinstance(data, dict) else {}
    kind = str(data.get("__type") or "").split("#")[-1] or None
    message = f"bedrock: {data.get('message') or data.get('Message') or status}"
    return vendor_error(status, message, kind)


class EventsToChat:
    """ConverseStream's event-stream frames to chat completion chunks."""

    def __init__(self, model: str, include_usage: bool):
        from botocore.eventstream import EventStreamBuffer

        self.model = model
        self.include_usage = include_usage
        self.buffer = EventStreamBuffer()
        self.id = "chatcmpl-bedrock"
        self.tools: dict[int, int] = {}
        self.parts: list[str] = []
        self.meta: Json = {}
        self.done = False

    @property
    def usage(self) -> Usage:
        return usage_of(self.meta)

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def feed(self, data: bytes) -> bytes:
        from botocore.eventstream import ParserError
        from botocore.exceptions import EventStreamError

        self.buffer.add_data(data)
        out: list[bytes] = []
        try:
            for message in self.buffer:
                self._event(message.headers, message.payload, out)
        except (ParserError, EventStreamError) as exc:
            out.append(error_event(f"bedrock: unreadable event stream ({exc})", code="upstream"))
            self.done = True
        return b"".join(out)

    def _event(self, headers: dict[str, Any], payload: bytes, out: list[bytes]) -> None:
        if self.done:
            return
        event = json_or_none(payload) or {}
        if headers.get(":message-type") != "event":
            kind = headers.get(":exception-type") or headers.get(":error-code") or "error"
            out.append(error_event(f"bedrock: {event.get('message', kind)}", code=str(kind)))
            self.done = True
            return
        kind = headers.get(":event-type")
        if kind == "messageStart":
            out.append(chunk(self.id, self.model, {"role": "assistant", "content": ""}))
        elif kind == "contentBlockStart":
            use = (event.get("start") or {}).get("toolUse")
            if use:
                position = self.tools[int(event.get("contentBlockIndex") or 0)] = len(self.tools)
                call = {
                    "index": position,
                    "id": use.get("toolUseId"),
                    "type": "function",
                    "function": {"name": use.get("name"), "arguments": ""},
                }
                out.append(chunk(self.id, self.model, {"tool_calls": [call]}))
        elif kind == "contentBlockDelta":
            self._delta(event, out)
        elif kind == "messageStop":
            finish = STOP_TO_FINISH.get(event.get("stopReason") or "end_turn", "stop")
            out.append(chunk(self.id, self.model, {}, finish))
        elif kind == "metadata":
            self.meta = event.get("usage") or {}
            if self.include_usage:
                out.append(usage_chunk(self.id, self.model, self.usage))
            out.append(DONE)
            self.done = True

    def _delta(self, event: Json, out: list[bytes]) -> None:
        delta = event.get("delta") or {}
        if "text" in delta:
            self.parts.append(delta["text"])
            out.append(chunk(self.id, self.model, {"content": delta["text"]}))
        elif "toolUse" in delta:
            position = self.tools.get(int(event.get("contentBlockIndex") or 0), 0)
            call = {"index": position, "function": {"arguments": delta["toolUse"].get("input", "")}}
            out.append(chunk(self.id, self.model, {"tool_calls": [call]}))

    def end(self) -> bytes:
        if self.done:
            return b""
        self.done = True
        return error_event("bedrock: the event stream ended early", code="upstream_error")


# --- I/O -----------------------------------------------------------------------------------


class BedrockChat(VendorChat):
    kind = "bedrock"

    def __init__(
        self,
        spec: BedrockProvider,
        transport: HttpTransport,
        credential: UpstreamCredential | None,
    ):
        # The credential signs the request; it is not sent as a header.
        super().__init__(transport, spec.modalities, upstream_error)
        self.aws = credential
        endpoint = spec.endpoint_url or f"https://bedrock-runtime.{spec.region}.amazonaws.com"
        base = f"{endpoint.rstrip('/')}/model/{quote(spec.model, safe='')}"
        # Signed as aiohttp will send it: yarl normalises the path (%3A becomes ':').
        self.plain_url = str(yarl.URL(base + "/converse"))
        self.stream_url = str(yarl.URL(base + "/converse-stream"))
        self.spec = spec

    async def signed(self, url: str, body: Json) -> tuple[Json, dict[str, str]]:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials

        if self.aws is None:
            raise UpstreamUnavailable("this bedrock version has no credential configured")
        access, _, rest = (await self.aws.secret()).partition(":")
        key, _, token = rest.partition(":")
        if not access or not key:
            raise UpstreamUnavailable("the bedrock credential is not '<key id>:<secret>'")
        credentials = Credentials(access, key, token or None)
        request = AWSRequest(
            method="POST",
            url=url,
            data=orjson.dumps(body),
            headers={"content-type": "application/json"},
        )
        SigV4Auth(credentials, "bedrock", self.spec.region).add_auth(request)
        return body, {k.lower(): str(v) for k, v in request.headers.items()}

    async def chat(self, body: bytes, request: dict[str, Any], call: Call) -> JsonReply:
        self.check(request)
        sent, headers = await self.signed(self.plain_url, request_body(request))
        response = await self.send(self.plain_url, sent, headers, call)
        answer = json_or_none(await response.read()) or {}
        return self.reply(answer_to_chat(answer, request["model"]))

    async def chat_stream(
        self, body: bytes, request: dict[str, Any], call: Call
    ) -> TranslatedStream:
        self.check(request)
        sent, headers = await self.signed(self.stream_url, request_body(request))
        response = await self.send(self.stream_url, sent, headers, call)
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        return TranslatedStream(response, EventsToChat(request["model"], include_usage))
