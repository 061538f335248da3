"""Anthropic's Messages API and the chat shape, both ways (pure functions).

Inbound (``POST /v1/messages``): :func:`messages_to_chat` and :func:`chat_to_message`.
Outbound (the ``anthropic`` provider): :func:`chat_to_messages` and :func:`message_to_chat`.
Structured output goes to Anthropic as one forced tool whose input is the JSON answer, and
comes back as text, so a caller asking for JSON gets JSON text like from any other vendor.
"""

from __future__ import annotations

from typing import Any

import orjson

from meshgate.errors import BadRequest
from meshgate.models.translate.chat import (
    Finish,
    Json,
    ToolCall,
    Unsupported,
    Usage,
    arguments_of,
    cached_tokens,
    completion,
    data_url,
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
)
from meshgate.models.translate.checks import check_numbers, check_schema

VENDOR = "anthropic"
JSON_TOOL = "json_output"
DEFAULT_MAX_TOKENS = 4096

STOP_TO_FINISH: dict[str, Finish] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
FINISH_TO_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
    "function_call": "tool_use",
}

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def error_body(status: int, message: str) -> Json:
    """Anthropic's error shape for an HTTP status."""
    kind = ERROR_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


# --- inbound: a Messages request to a chat request ----------------------------------------


def messages_to_chat(request: Json) -> Json:
    """A checked Anthropic Messages request as a chat request for any registered model."""
    model = request.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("model: field required", param="model")
    max_tokens = request.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise BadRequest("max_tokens: a positive integer is required", param="max_tokens")
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages: a non-empty list is required", param="messages")
    check_numbers(request, ("top_k",), ("temperature", "top_p"))
    chat: Json = {"model": model, "max_tokens": max_tokens, "messages": []}
    system = request.get("system")
    if system is not None:
        chat["messages"].append({"role": "system", "content": _system_text(system)})
    for i, message in enumerate(messages):
        chat["messages"] += _to_chat_messages(message, f"messages[{i}]")
    for name in ("temperature", "top_p", "top_k"):
        if name in request:
            chat[name] = request[name]
    if isinstance(request.get("stop_sequences"), list):
        chat["stop"] = request["stop_sequences"]
    if "tools" in request:
        chat["tools"] = [_tool_to_chat(t, f"tools[{i}]") for i, t in enumerate(request["tools"])]
    choice = request.get("tool_choice")
    if isinstance(choice, dict):
        chat.update(_tool_choice_to_chat(choice))
    user = (request.get("metadata") or {}).get("user_id")
    if isinstance(user, str):
        chat["user"] = user
    if request.get("stream") is True:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    elif "stream" in request and not isinstance(request["stream"], bool):
        raise BadRequest("stream: must be true or false", param="stream")
    return chat


def _system_text(system: Any) -> str:
    if isinstance(system, str):
        return system
    if isinstance(system, list):
        return "\n\n".join(b.get("text", "") for b in system if isinstance(b, dict))
    raise BadRequest("system: a string or a list of text blocks", param="system")


def _to_chat_messages(message: Any, where: str) -> list[Json]:
    if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
        raise BadRequest(f"{where}.role: must be 'user' or 'assistant'", param=f"{where}.role")
    role, content = message["role"], message.get("content")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if not isinstance(content, list):
        raise BadRequest(f"{where}.content: a string or a list of blocks", param=f"{where}.content")
    if role == "assistant":
        return [_assistant_to_chat(content, where)]
    results: list[Json] = []
    parts: list[Json] = []
    for j, block in enumerate(content):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            parts.append({"type": "text", "text": block.get("text", "")})
        elif kind == "image":
            parts.append(_image_to_chat(block.get("source") or {}, f"{where}.content[{j}]"))
        elif kind == "tool_result":
            text = _tool_result_text(block.get("content"))
            if block.get("is_error"):
                text = "error: " + text
            results.append(
                {"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": text}
            )
        else:
            raise BadRequest(
                f"{where}.content[{j}].type {kind!r} is not supported",
                param=f"{where}.content[{j}].type",
            )
    if parts:
        only_text = all(p["type"] == "text" for p in parts)
        results.append({"role": "user", "content": text_of(parts) if only_text else parts})
    return results


def _assistant_to_chat(content: list[Any], where: str) -> Json:
    texts, calls = [], []
    for j, block in enumerate(content):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "tool_use":
            calls.append(tool_call(block.get("id", ""), block.get("name", ""), block.get("input")))
        else:
            raise BadRequest(
                f"{where}.content[{j}].type {kind!r} is not supported",
                param=f"{where}.content[{j}].type",
            )
    message: Json = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    return message


def _image_to_chat(source: Json, where: str) -> Json:
    if source.get("type") == "base64":
        url = f"data:{source.get('media_type')};base64,{source.get('data')}"
    elif source.get("type") == "url":
        url = str(source.get("url"))
    else:
        raise BadRequest(f"{where}.source.type must be base64 or url", param=f"{where}.source")
    return {"type": "image_url", "image_url": {"url": url}}


def _tool_result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict))
    return ""


def _tool_to_chat(tool: Any, where: str) -> Json:
    if not isinstance(tool, dict) or tool.get("type") not in (None, "custom"):
        kind = tool.get("type") if isinstance(tool, dict) else None
        raise BadRequest(
            f"{where}.type {kind!r}: only client tools are supported", param=f"{where}.type"
        )
    check_schema(tool.get("input_schema"), f"{where}.input_schema")
    return {
        "type": "function",
        "function": {
            "name": tool.get("name"),
            "description": tool.get("description") or "",
            "parameters": tool.get("input_schema"),
        },
    }


def _tool_choice_to_chat(choice: Json) -> Json:
    kind = choice.get("type")
    out: Json = {}
    if kind == "auto":
        out["tool_choice"] = "auto"
    elif kind == "any":
        out["tool_choice"] = "required"
    elif kind == "none":
        out["tool_choice"] = "none"
    elif kind == "tool":
        out["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    else:
        raise BadRequest(f"tool_choice.type {kind!r} is not known", param="tool_choice.type")
    if choice.get("disable_parallel_tool_use"):
        out["parallel_tool_calls"] = False
    return out


# --- inbound: a chat answer to a Message -------------------------------------------------


def chat_to_message(answer: Json, model: str) -> Json:
    choice = (answer.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content: list[Json] = []
    if message.get("content"):
        content.append({"type": "text", "text": message["content"]})
    for call in message.get("tool_calls") or ():
        fn = call.get("function") or {}
        try:
            arguments = orjson.loads(fn.get("arguments") or "{}")
        except orjson.JSONDecodeError:
            arguments = {"_raw": fn.get("arguments")}
        content.append(
            {"type": "tool_use", "id": call.get("id"), "name": fn.get("name"), "input": arguments}
        )
    return {
        "id": "msg_" + str(answer.get("id") or "").removeprefix("chatcmpl-"),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": FINISH_TO_STOP.get(choice.get("finish_reason") or "stop", "end_turn"),
        "stop_sequence": None,
        "usage": usage_to_anthropic(answer.get("usage")),
    }


def usage_to_anthropic(u: Json | None) -> Json:
    """Anthropic counts cached prompt tokens apart from ``input_tokens``."""
    u = u or {}
    cached = cached_tokens(u)
    return {
        "input_tokens": max(int(u.get("prompt_tokens") or 0) - cached, 0),
        "output_tokens": int(u.get("completion_tokens") or 0),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
    }


# --- outbound: a chat request to a Messages request --------------------------------------


def chat_to_messages(request: Json, model: str) -> Json:
    """The Messages request the ``anthropic`` provider sends for a chat request."""
    refuse_many(request, VENDOR)
    chat_messages = request["messages"]
    body: Json = {
        "model": model,
        "max_tokens": max_tokens_of(request, DEFAULT_MAX_TOKENS),
        "messages": _merge_turns(
            [
                _to_anthropic(m, f"messages[{i}]")
                for i, m in enumerate(chat_messages)
                if m.get("role") not in ("system", "developer")
            ]
        ),
    }
    if (system := system_text(chat_messages)) is not None:
        body["system"] = system
    for name in ("temperature", "top_p", "top_k"):
        if name in request:
            body[name] = request[name]
    if stops := stops_of(request):
        body["stop_sequences"] = stops
    tools = [
        {"name": t["name"], "description": t["description"], "input_schema": t["parameters"]}
        for t in tools_of(request)
    ]
    choice = _tool_choice_to_anthropic(request)
    schema = json_schema_of(request)
    if schema is not None:
        tools.append(
            {"name": JSON_TOOL, "description": "Answer with this JSON.", "input_schema": schema}
        )
        choice = {"type": "tool", "name": JSON_TOOL}
    if tools:
        body["tools"] = tools
    if choice is not None:
        body["tool_choice"] = choice
    if isinstance(request.get("user"), str):
        body["metadata"] = {"user_id": request["user"]}
    if request.get("stream") is True:
        body["stream"] = True
    return body


def _to_anthropic(message: Json, where: str) -> Json:
    role = message.get("role")
    if role == "tool":
        block = {
            "type": "tool_result",
            "tool_use_id": message.get("tool_call_id"),
            "content": text_of(message.get("content")),
        }
        return {"role": "user", "content": [block]}
    if role == "assistant":
        content: list[Json] = []
        if text := text_of(message.get("content")):
            content.append({"type": "text", "text": text})
        for k, call in enumerate(message.get("tool_calls") or ()):
            content.append(
                {
                    "type": "tool_use",
                    "id": call.get("id"),
                    "name": (call.get("function") or {}).get("name"),
                    "input": arguments_of(call, f"{where}.tool_calls[{k}]"),
                }
            )
        return {"role": "assistant", "content": content}
    if role != "user":
        raise BadRequest(f"{where}.role {role!r} is not known", param=f"{where}.role")
    blocks: list[Json] = []
    for j, part in enumerate(parts_of(message.get("content"))):
        if part.get("type") == "text":
            blocks.append({"type": "text", "text": part.get("text", "")})
        elif part.get("type") == "image_url":
            blocks.append(_image_to_anthropic(part, f"{where}.content[{j}]"))
        else:
            raise Unsupported(VENDOR, f"{part.get('type')!r} content", f"{where}.content[{j}]")
    return {"role": "user", "content": blocks}


def _image_to_anthropic(part: Json, where: str) -> Json:
    url = str((part.get("image_url") or {}).get("url") or "")
    inline = data_url(url)
    if inline is not None:
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": inline[0], "data": inline[1]},
        }
    if not url.startswith("https://"):
        raise BadRequest(f"{where}: an image URL must be https or a data URL", param=where)
    return {"type": "image", "source": {"type": "url", "url": url}}


def _merge_turns(messages: list[Json]) -> list[Json]:
    """Anthropic wants user and assistant turns to alternate: neighbours of one role merge
    (a run of tool results becomes one user turn)."""
    merged: list[Json] = []
    for message in messages:
        if merged and merged[-1]["role"] == message["role"]:
            merged[-1]["content"] = [*merged[-1]["content"], *message["content"]]
        else:
            merged.append({"role": message["role"], "content": list(message["content"])})
    return merged


def _tool_choice_to_anthropic(request: Json) -> Json | None:
    choice = request.get("tool_choice")
    out: Json | None
    if choice is None:
        out = None
    elif choice == "auto":
        out = {"type": "auto"}
    elif choice == "required":
        out = {"type": "any"}
    elif choice == "none":
        out = {"type": "none"}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        out = {"type": "tool", "name": choice["function"].get("name")}
    else:
        raise BadRequest("tool_choice is not known", param="tool_choice")
    if request.get("parallel_tool_calls") is False:
        out = {**(out or {"type": "auto"}), "disable_parallel_tool_use": True}
    return out


# --- outbound: a Message to a chat answer ------------------------------------------------


def message_to_chat(message: Json, model: str) -> Json:
    texts: list[str] = []
    calls: list[ToolCall] = []
    for block in message.get("content") or ():
        kind = block.get("type")
        if kind == "text":
            texts.append(block.get("text", ""))
        elif kind == "tool_use" and block.get("name") == JSON_TOOL:
            texts.append(orjson.dumps(block.get("input") or {}).decode())
        elif kind == "tool_use":
            calls.append(tool_call(block.get("id", ""), block.get("name", ""), block.get("input")))
    finish = STOP_TO_FINISH.get(message.get("stop_reason") or "end_turn", "stop")
    if finish == "tool_calls" and not calls:
        finish = "stop"  # the forced JSON tool answered: that is the text of the reply
    return completion(
        "chatcmpl-" + str(message.get("id") or "").removeprefix("msg_"),
        model,
        "".join(texts) if texts or not calls else None,
        calls,
        finish,
        usage_to_chat(message.get("usage")),
    )


def usage_to_chat(u: Json | None) -> Usage:
    u = u or {}
    cached = int(u.get("cache_read_input_tokens") or 0)
    written = int(u.get("cache_creation_input_tokens") or 0)
    prompt = int(u.get("input_tokens") or 0) + cached + written
    return usage(prompt, int(u.get("output_tokens") or 0), cached)
