"""A fake Bedrock runtime (Converse, ConverseStream) answering from the shared brain.

``POST /model/{modelId}/converse`` and ``/converse-stream``, each request's SigV4 signature
checked with botocore against the test credentials; ConverseStream answers in AWS's binary
event-stream framing (prelude with lengths and CRC32, typed headers, JSON payload, message
CRC32), with the events messageStart, contentBlockStart, contentBlockDelta,
contentBlockStop, messageStop and metadata; errors carry ``x-amzn-ErrorType``.
"""

from __future__ import annotations

import binascii
import struct
from typing import Any

import orjson
from aiohttp import web
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from tests.models.vendors.brain import Answer, Ask, Turn, answer
from tests.models.vendors.fakes import FakeVendor

ACCESS_KEY, SECRET_KEY, REGION = "AKIDFAKEBEDROCK", "fake-bedrock-secret", "us-east-1"
STOP = {"end": "end_turn", "tool": "tool_use", "length": "max_tokens"}
ERRORS = {
    400: "ValidationException",
    403: "AccessDeniedException",
    429: "ThrottlingException",
    500: "InternalServerException",
    503: "ServiceUnavailableException",
}


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message: string headers only, as Bedrock sends them."""
    encoded = b""
    for name, value in headers.items():
        raw_name, raw_value = name.encode(), value.encode()
        encoded += struct.pack("!B", len(raw_name)) + raw_name + b"\x07"
        encoded += struct.pack("!H", len(raw_value)) + raw_value
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack("!II", total, len(encoded))
    prelude += struct.pack("!I", binascii.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + encoded + payload
    return message + struct.pack("!I", binascii.crc32(message) & 0xFFFFFFFF)


def event(kind: str, data: dict[str, Any]) -> bytes:
    headers = {":event-type": kind, ":content-type": "application/json", ":message-type": "event"}
    return frame(headers, orjson.dumps(data))


def signature_ok(request: web.Request, raw: bytes) -> bool:
    """Recomputes the SigV4 signature of what arrived, with botocore, and compares."""
    auth = request.headers.get("authorization", "")
    if not auth.startswith("AWS4-HMAC-SHA256 "):
        return False
    fields = dict(p.strip().split("=", 1) for p in auth[len("AWS4-HMAC-SHA256 ") :].split(","))
    signed = fields["SignedHeaders"].split(";")
    headers = {h: request.headers.get(h, "") for h in signed}
    url = f"http://{request.headers['host']}{request.raw_path}"
    again = AWSRequest(method="POST", url=url, data=raw, headers=headers)
    again.context["timestamp"] = request.headers["x-amz-date"]
    signer = SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "bedrock", REGION)
    canonical = signer.canonical_request(again)
    expected = signer.signature(signer.string_to_sign(again, canonical), again)
    return (
        bool(fields["Credential"].startswith(ACCESS_KEY + "/")) and expected == fields["Signature"]
    )


def read_ask(body: dict[str, Any]) -> Ask:
    system = "".join(b["text"] for b in body["system"]) if body.get("system") else None
    turns = []
    for m in body["messages"]:
        results = [b["toolResult"] for b in m["content"] if "toolResult" in b]
        for r in results:
            turns.append(Turn("tool", tool_result=r["content"][0]["text"]))
        if len(results) < len(m["content"]):
            text = "".join(b.get("text", "") for b in m["content"])
            images = sum("image" in b for b in m["content"])
            turns.append(Turn(m["role"], text, images))
    tools = [t["toolSpec"]["name"] for t in (body.get("toolConfig") or {}).get("tools", ())]
    limit = (body.get("inferenceConfig") or {}).get("maxTokens")
    return Ask(system, turns, tools, None, False, limit)


def usage_of(a: Answer) -> dict[str, Any]:
    return {
        "inputTokens": a.input_tokens,
        "outputTokens": a.output_tokens,
        "totalTokens": a.input_tokens + a.cached_tokens + a.output_tokens,
        "cacheReadInputTokens": a.cached_tokens,
        "cacheWriteInputTokens": 0,
    }


class FakeBedrock(FakeVendor):
    vendor = "bedrock"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/model/{model}/converse", self.converse)
        app.router.add_post("/model/{model}/converse-stream", self.converse_stream)

    def error(self, status: int, message: str) -> web.Response:
        kind = ERRORS.get(status, "InternalServerException")
        return self.json({"message": message}, status, **{"x-amzn-ErrorType": kind})

    async def _ask(self, request: web.Request) -> tuple[dict[str, Any], web.Response | None]:
        raw = await request.read()
        body = await self.record(request)
        if not signature_ok(request, raw):
            return body, self.json(
                {
                    "message": "The request signature we calculated does not "
                    "match the signature you provided."
                },
                403,
                **{"x-amzn-ErrorType": "InvalidSignatureException"},
            )
        if self.fail_status is not None:
            return body, self.error(self.fail_status, f"{self.name} is failing")
        return body, None

    async def converse(self, request: web.Request) -> web.Response:
        body, refused = await self._ask(request)
        if refused is not None:
            return refused
        a = answer(read_ask(body))
        content: list[dict[str, Any]] = [{"text": a.text}] if a.text else []
        if a.tool:
            call_id, name, args = a.tool
            content.append(
                {"toolUse": {"toolUseId": "tooluse_" + call_id, "name": name, "input": args}}
            )
        return self.json(
            {
                "output": {"message": {"role": "assistant", "content": content}},
                "stopReason": STOP[a.stop],
                "usage": usage_of(a),
                "metrics": {"latencyMs": 3},
            }
        )

    async def converse_stream(self, request: web.Request) -> web.StreamResponse:
        body, refused = await self._ask(request)
        if refused is not None:
            return refused
        a = answer(read_ask(body))
        response = web.StreamResponse(
            headers={"content-type": "application/vnd.amazon.eventstream"}
        )
        await response.prepare(request)
        await response.write(event("messageStart", {"role": "assistant"}))
        index = 0
        if a.text:
            for piece in a.pieces():
                await response.write(
                    event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": piece}})
                )
            await response.write(event("contentBlockStop", {"contentBlockIndex": 0}))
            index = 1
        if a.tool:
            call_id, name, _ = a.tool
            start = {"toolUse": {"toolUseId": "tooluse_" + call_id, "name": name}}
            await response.write(
                event("contentBlockStart", {"contentBlockIndex": index, "start": start})
            )
            for part in a.argument_pieces():
                delta = {"toolUse": {"input": part}}
                await response.write(
                    event("contentBlockDelta", {"contentBlockIndex": index, "delta": delta})
                )
            await response.write(event("contentBlockStop", {"contentBlockIndex": index}))
        await response.write(event("messageStop", {"stopReason": STOP[a.stop]}))
        await response.write(event("metadata", {"usage": usage_of(a), "metrics": {"latencyMs": 3}}))
        await response.write_eof()
        return response
