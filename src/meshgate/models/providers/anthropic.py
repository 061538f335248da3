"""Anthropic's Messages API as a chat provider.

The translation lives in :mod:`meshgate.models.translate.anthropic` (shared with the inbound
``/v1/messages`` route); this file is the I/O and Anthropic's error shape.
"""

from __future__ import annotations

from typing import Any

from meshgate.errors import MeshgateError
from meshgate.models.provider_specs import AnthropicProvider
from meshgate.models.providers.base import Call, JsonReply
from meshgate.models.providers.http import HttpTransport
from meshgate.models.providers.translated import (
    TranslatedStream,
    VendorChat,
    json_or_none,
    vendor_error,
)
from meshgate.models.translate.anthropic import chat_to_messages, message_to_chat
from meshgate.models.translate.anthropic_stream import MessageEventsToChat
from meshgate.security.credentials import UpstreamCredential

# Anthropic's 529 means overloaded: the same as any 5xx for retries and cooldowns.


def upstream_error(status: int, body: bytes) -> MeshgateError:
    """``{"type": "error", "error": {"type", "message"}}``, its message kept."""
    data = json_or_none(body)
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        message = f"anthropic: {error.get('message') or status}"
        return vendor_error(status, message, str(error.get("type") or "") or None)
    return vendor_error(status, f"anthropic answered {status}")


class AnthropicChat(VendorChat):
    kind = "anthropic"

    def __init__(
        self,
        spec: AnthropicProvider,
        transport: HttpTransport,
        credential: UpstreamCredential | None,
    ):
        super().__init__(transport, spec.modalities, upstream_error, credential, "x-api-key")
        self.url = spec.base_url.rstrip("/") + "/v1/messages"
        self.model = spec.model
        self.headers = {"anthropic-version": spec.anthropic_version}

    async def chat(self, body: bytes, request: dict[str, Any], call: Call) -> JsonReply:
        self.check(request)
        sent = chat_to_messages({**request, "stream": False}, self.model)
        response = await self.send(self.url, sent, self.headers, call)
        message = json_or_none(await response.read()) or {}
        return self.reply(message_to_chat(message, request["model"]))

    async def chat_stream(
        self, body: bytes, request: dict[str, Any], call: Call
    ) -> TranslatedStream:
        self.check(request)
        sent = chat_to_messages({**request, "stream": True}, self.model)
        response = await self.send(self.url, sent, self.headers, call)
        include_usage = bool((request.get("stream_options") or {}).get("include_usage"))
        return TranslatedStream(response, MessageEventsToChat(request["model"], include_usage))
