"""A fast mock OpenAI upstream: chat completions (plain and streamed, with usage), embeddings
and models.

It also accepts ``POST /v1/traces`` so that it can be the OTLP sink of a traced run; the
count of trace exports it received is at ``GET /stats``.

    python -m bench.mock_upstream --port 9000
"""

from __future__ import annotations

import argparse
import math
import time
import zlib

import orjson
from aiohttp import web

MODEL = "mock-gpt"
REPLY = "Hello from the mock upstream."
USAGE = {"prompt_tokens": 12, "completion_tokens": 7, "total_tokens": 19}
DIMENSIONS = 64


def embedding(text: str) -> list[float]:
    """A bag of words hashed into a unit vector: the same words give the same direction, so a
    semantic cache can hit on a question asked again."""
    vector = [0.0] * DIMENSIONS
    for word in text.lower().split():
        vector[zlib.crc32(word.encode()) % DIMENSIONS] += 1.0
    norm = math.sqrt(sum(v * v for v in vector)) or 1.0
    return [v / norm for v in vector]


def completion(model: str) -> bytes:
    return orjson.dumps(
        {
            "id": "chatcmpl-mock",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": REPLY},
                    "finish_reason": "stop",
                }
            ],
            "usage": USAGE,
        }
    )


def chunks(model: str) -> list[bytes]:
    created = int(time.time())
    base = {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": created}
    events = [{**base, "model": model, "choices": [{"index": 0, "delta": {"role": "assistant"}}]}]
    for word in REPLY.split(" "):
        delta = {"index": 0, "delta": {"content": word + " "}, "finish_reason": None}
        events.append({**base, "model": model, "choices": [delta]})
    stop = {"index": 0, "delta": {}, "finish_reason": "stop"}
    events.append({**base, "model": model, "choices": [stop]})
    events.append({**base, "model": model, "choices": [], "usage": USAGE})
    return [b"data: " + orjson.dumps(e) + b"\n\n" for e in events] + [b"data: [DONE]\n\n"]


class Upstream:
    def __init__(self) -> None:
        self.trace_exports = 0
        self.chat_calls = 0

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        model = body.get("model", MODEL)
        self.chat_calls += 1
        if not body.get("stream"):
            return web.Response(body=completion(model), content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for chunk in chunks(model):
            await response.write(chunk)
        await response.write_eof()
        return response

    async def embeddings(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [
            {"object": "embedding", "index": i, "embedding": embedding(t)}
            for i, t in enumerate(texts)
        ]
        tokens = sum(len(t.split()) for t in texts)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        reply = {"object": "list", "data": data, "model": body.get("model"), "usage": usage}
        return web.Response(body=orjson.dumps(reply), content_type="application/json")

    async def models(self, request: web.Request) -> web.Response:
        data = {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "mock"}]}
        return web.Response(body=orjson.dumps(data), content_type="application/json")

    async def traces(self, request: web.Request) -> web.Response:
        await request.read()
        self.trace_exports += 1
        return web.Response(body=b"", content_type="application/x-protobuf")

    async def stats(self, request: web.Request) -> web.Response:
        data = {"trace_exports": self.trace_exports, "chat_calls": self.chat_calls}
        return web.Response(body=orjson.dumps(data), content_type="application/json")


def make_app() -> web.Application:
    upstream = Upstream()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", upstream.chat)
    app.router.add_post("/v1/embeddings", upstream.embeddings)
    app.router.add_get("/v1/models", upstream.models)
    app.router.add_get("/stats", upstream.stats)
    # The OTLP sink: /v1/traces, whether the exporter was given the base URL or the full one.
    app.router.add_post("/{tail:.*traces}", upstream.traces)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    web.run_app(make_app(), host="127.0.0.1", port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
