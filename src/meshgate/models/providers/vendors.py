"""Builds the translating chat providers from their registry specs (imports stay lazy)."""

from __future__ import annotations

from typing import Any

from meshgate.models.providers.base import ChatProvider
from meshgate.models.providers.http import HttpTransport
from meshgate.security.credentials import UpstreamCredential

VENDOR_TYPES = frozenset({"anthropic", "gemini", "azure_openai", "bedrock"})


def build_vendor(
    spec: Any, transport: HttpTransport, credential: UpstreamCredential | None
) -> ChatProvider:
    if spec.type == "anthropic":
        from meshgate.models.providers.anthropic import AnthropicChat

        return AnthropicChat(spec, transport, credential)
    if spec.type == "gemini":
        from meshgate.models.providers.gemini import GeminiChat

        return GeminiChat(spec, transport, credential)
    if spec.type == "azure_openai":
        from meshgate.models.providers.azure_openai import AzureOpenAIChat

        return AzureOpenAIChat(spec, transport, credential)
    if spec.type == "bedrock":
        from meshgate.models.providers.bedrock import BedrockChat

        return BedrockChat(spec, transport, credential)
    raise ValueError(f"not a vendor provider: {spec.type}")
