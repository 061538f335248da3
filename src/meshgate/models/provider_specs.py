"""Registry shapes of the vendor chat providers (Anthropic, Gemini, Azure OpenAI, Bedrock).

Kept free of heavy imports, like :mod:`meshgate.models.config`, which puts them in the
provider union. Keys are never stored here: each names where the key comes from.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from meshgate.strictjson import RequestBody

ENV_NAME = r"^[A-Z_][A-Z0-9_]*$"
ENV_DOC = "Environment variable with the key; config file only (the API refuses it)."
CREDENTIAL = r"^[a-z0-9][a-z0-9._-]{0,63}$"
CREDENTIAL_DOC = "Name of a platform credential granted to the tenant."
Modality = Literal["text", "image"]


class VendorSpec(RequestBody):
    modalities: list[Modality] | None = Field(
        None,
        description="Input kinds the model accepts (default any); an image part to a "
        "text-only model is a 400.",
    )


class AnthropicProvider(VendorSpec):
    """Anthropic's Messages API."""

    type: Literal["anthropic"]
    model: str = Field(description="Anthropic model id, e.g. claude-sonnet-4-5.")
    base_url: str = Field("https://api.anthropic.com", pattern=r"^https?://")
    credential: str | None = Field(None, pattern=CREDENTIAL, description=CREDENTIAL_DOC)
    api_key_env: str | None = Field(None, pattern=ENV_NAME, description=ENV_DOC)
    anthropic_version: str = Field("2023-06-01", description="The anthropic-version header.")


class GeminiProvider(VendorSpec):
    """Google's Gemini API (generateContent, streamGenerateContent)."""

    type: Literal["gemini"]
    model: str = Field(description="Gemini model id, e.g. gemini-2.5-flash.")
    base_url: str = Field("https://generativelanguage.googleapis.com", pattern=r"^https?://")
    api_version: str = Field("v1beta", pattern=r"^v[0-9a-z]+$")
    credential: str | None = Field(None, pattern=CREDENTIAL, description=CREDENTIAL_DOC)
    api_key_env: str | None = Field(None, pattern=ENV_NAME, description=ENV_DOC)


class AzureOpenAIProvider(VendorSpec):
    """An Azure OpenAI deployment: ``{endpoint}/openai/deployments/{deployment}``."""

    type: Literal["azure_openai"]
    endpoint: str = Field(pattern=r"^https?://", description="https://<resource>.openai.azure.com")
    deployment: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$")
    api_version: str = Field("2024-10-21", pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}(-preview)?$")
    credential: str | None = Field(None, pattern=CREDENTIAL, description=CREDENTIAL_DOC)
    api_key_env: str | None = Field(None, pattern=ENV_NAME, description=ENV_DOC)


class BedrockProvider(VendorSpec):
    """Amazon Bedrock's Converse and ConverseStream APIs, signed with SigV4."""

    type: Literal["bedrock"]
    model: str = Field(description="Bedrock model id or inference profile.")
    region: str = Field(pattern=r"^[a-z0-9-]{1,32}$", description="e.g. us-east-1")
    endpoint_url: str | None = Field(
        None, pattern=r"^https?://", description="Default https://bedrock-runtime.<region>..."
    )
    credential: str | None = Field(
        None,
        pattern=CREDENTIAL,
        description=CREDENTIAL_DOC + " Its secret is '<access key id>:<secret access key>' "
        "(':<session token>' may follow).",
    )
    api_key_env: str | None = Field(
        None, pattern=ENV_NAME, description="Variable holding the same; config file only."
    )
