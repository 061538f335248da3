"""Any Open Inference Protocol (KServe V2) server: Triton, KServe, MLServer, another Meshgate."""

from __future__ import annotations

import orjson

from meshgate.models.config import V2Provider
from meshgate.models.errors import UpstreamUnavailable
from meshgate.models.providers.base import Call, Tensors
from meshgate.models.providers.http import HttpTransport
from meshgate.models.providers.openai import upstream_error
from meshgate.models.tensors import decode_response, encode_request


def infer_url(spec: V2Provider) -> str:
    base = spec.url.rstrip("/") + f"/v2/models/{spec.model}"
    return base + (f"/versions/{spec.version}" if spec.version else "") + "/infer"


class V2Model:
    kind = "v2"

    def __init__(self, spec: V2Provider, transport: HttpTransport):
        self.url = infer_url(spec)
        self.transport = transport

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def infer(self, inputs: Tensors, call: Call) -> Tensors:
        headers = {"content-type": "application/json", **call.headers}
        response = await self.transport.post(
            self.url, encode_request(inputs), headers, call.timeout
        )
        body = await response.read()
        if response.status >= 400:
            raise upstream_error(response.status, body)
        try:
            return decode_response(body)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise UpstreamUnavailable(f"the V2 upstream sent an unreadable answer: {exc}") from exc
