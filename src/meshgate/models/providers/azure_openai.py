"""An Azure OpenAI deployment as a chat and embeddings provider.

Azure speaks OpenAI's bodies on its own paths
(``{endpoint}/openai/deployments/{deployment}/...?api-version=``), with the key in an
``api-key`` header, so bodies and streams pass through as with any OpenAI upstream; what
differs is the address, the header and Azure's error shape.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from meshgate.errors import MeshgateError
from meshgate.models.provider_specs import AzureOpenAIProvider
from meshgate.models.providers.base import Call, JsonReply
from meshgate.models.providers.http import HttpResponse, HttpTransport
from meshgate.models.providers.openai import StreamMeter, UpstreamStream, read_reply, request_body
from meshgate.models.providers.translated import json_or_none, vendor_error
from meshgate.models.translate.checks import check_modalities
from meshgate.security.credentials import UpstreamCredential

# --- pure translation ----------------------------------------------------------------------


def upstream_error(status: int, body: bytes) -> MeshgateError:
    """Azure's ``{"error": {"code": "429" | "content_filter" | ..., "message"}}``."""
    data = json_or_none(body)
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        code = str(error.get("code") or "") or None
        message = f"azure_openai: {error.get('message') or status}"
        if code == "content_filter":
            return vendor_error(400, message, code)
        return vendor_error(status, message, None if (code or "").isdigit() else code)
    return vendor_error(status, f"azure_openai answered {status}")


def deployment_url(spec: AzureOpenAIProvider, operation: str) -> str:
    deployment = quote(spec.deployment)
    return (
        f"{spec.endpoint.rstrip('/')}/openai/deployments/{deployment}/{operation}"
        f"?api-version={quote(spec.api_version)}"
    )


# --- I/O -----------------------------------------------------------------------------------


class AzureOpenAIChat:
    kind = "azure_openai"

    def __init__(
        self,
        spec: AzureOpenAIProvider,
        transport: HttpTransport,
        credential: UpstreamCredential | None,
    ):
        self.chat_url = deployment_url(spec, "chat/completions")
        self.embed_url = deployment_url(spec, "embeddings")
        self.modalities = spec.modalities
        self.transport = transport
        self.credential = credential

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def _post(self, url: str, body: bytes, call: Call) -> HttpResponse:
        headers = {"content-type": "application/json", **call.headers}
        if self.credential is not None:
            headers["api-key"] = await self.credential.secret()
        response = await self.transport.post(url, body, headers, call.timeout)
        if response.status >= 400:
            raise upstream_error(response.status, await response.read())
        return response

    async def chat(self, body: bytes, request: dict[str, Any], call: Call) -> JsonReply:
        check_modalities(request, self.modalities)
        sent = request_body(body, request, None, call.rewrite)
        answer = await (await self._post(self.chat_url, sent, call)).read()
        tokens, text = read_reply(answer)
        return JsonReply(answer, tokens, text)

    async def chat_stream(self, body: bytes, request: dict[str, Any], call: Call) -> UpstreamStream:
        check_modalities(request, self.modalities)
        sent = request_body(body, request, None, call.rewrite)
        response = await self._post(self.chat_url, sent, call)
        return UpstreamStream(response, StreamMeter(True), len(sent) // 4)

    async def embed(self, body: bytes, request: dict[str, Any], call: Call) -> JsonReply:
        sent = request_body(body, request, None, call.rewrite)
        answer = await (await self._post(self.embed_url, sent, call)).read()
        tokens, _ = read_reply(answer)
        return JsonReply(answer, tokens, None)
