"""A fake OpenAI-compatible upstream: a real aiohttp server on loopback, in its own thread.

It answers like OpenAI (chat, streamed chat, embeddings, errors), records what it received,
and counts the streams it has open, so tests can see what reached the upstream and whether a
connection was left behind.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
import zlib
from typing import Any

import orjson
from aiohttp import web

from tests.conftest import free_port

DIMENSIONS = 32


def bag_of_words(text: str) -> list[float]:
    """The fake's embedding: word counts hashed into a few dimensions, so texts with the same
    words (whatever their case and punctuation) are close and others are not."""
    vector = [0.0] * DIMENSIONS
    for word in re.findall(r"[a-z0-9]+", text.lower()):
        vector[zlib.crc32(word.encode()) % DIMENSIONS] += 1.0
    return vector


class FakeOpenAI:
    def __init__(self, loop: asyncio.AbstractEventLoop, name: str):
        self.loop = loop
        self.name = name
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.fail_status: int | None = None
        self.fail_every: int | None = None
        """Every n-th chat call answers 500 (a version with a steady error rate)."""
        self.open_streams = 0
        self.streams_started = 0
        self.lock = threading.Lock()
        asyncio.run_coroutine_threadsafe(self._start(), loop).result(10)

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/embeddings", self.embeddings)
        app.router.add_post("/v2/models/{name}/infer", self.v2_infer)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)

    def calls(self) -> int:
        with self.lock:
            return len(self.requests)

    async def _record(self, request: web.Request) -> dict[str, Any]:
        body = orjson.loads(await request.read())
        with self.lock:
            self.requests.append(body)
            self.headers.append(dict(request.headers))
        return body

    def _error(self, status: int, message: str, type_: str) -> web.Response:
        body = {"error": {"message": message, "type": type_, "code": None, "param": None}}
        return web.json_response(body, status=status)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        if self.fail_status is not None:
            return self._error(self.fail_status, f"{self.name} is failing", "server_error")
        if self.fail_every and self.calls() % self.fail_every == 0:
            return self._error(500, f"{self.name} failed this one", "server_error")
        last = body["messages"][-1]["content"]
        if last.startswith("sleep "):
            await asyncio.sleep(float(last.split()[1]))
        if last == "reject me":
            return self._error(400, "This model's maximum context length is 10 tokens", "invalid")
        if last == "slow down":
            return self._error(429, "upstream rate limit", "rate_limit")
        reply = f"{self.name} says: {last}"
        if body.get("stream"):
            return await self._stream(request, body, reply, endless=last == "endless")
        return web.json_response(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": reply},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12},
            }
        )

    async def _stream(
        self, request: web.Request, body: dict[str, Any], reply: str, endless: bool
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        with self.lock:
            self.open_streams += 1
            self.streams_started += 1
        try:
            words = reply.split(" ")
            index = 0
            while endless or index < len(words):
                piece = words[index % len(words)] + " "
                await response.write(_chunk(body["model"], {"content": piece}))
                index += 1
                await asyncio.sleep(0.02 if endless else 0)
            await response.write(_chunk(body["model"], {}, finish="stop"))
            if (body.get("stream_options") or {}).get("include_usage"):
                usage = {"prompt_tokens": 7, "completion_tokens": len(words), "total_tokens": 30}
                event = {"id": "c", "object": "chat.completion.chunk", "created": 0,
                         "model": body["model"], "choices": [], "usage": usage}  # fmt: skip
                await response.write(b"data: " + orjson.dumps(event) + b"\n\n")
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            with self.lock:
                self.open_streams -= 1
        return response

    async def embeddings(self, request: web.Request) -> web.Response:
        body = await self._record(request)
        if self.fail_status is not None:
            return self._error(self.fail_status, f"{self.name} is failing", "server_error")
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [
            {"object": "embedding", "index": i, "embedding": bag_of_words(str(text))}
            for i, text in enumerate(inputs)
        ]
        return web.json_response(
            {
                "object": "list",
                "data": data,
                "model": body["model"],
                "usage": {"prompt_tokens": 4, "total_tokens": 4},
            }
        )

    async def v2_infer(self, request: web.Request) -> web.Response:
        """A V2 model that doubles its input ``x``."""
        body = await self._record(request)
        if self.fail_status is not None:
            return web.json_response({"error": "failing"}, status=self.fail_status)
        x = next(i for i in body["inputs"] if i["name"] == "x")
        doubled = {**x, "name": "doubled", "data": [v * 2 for v in x["data"]]}
        name = request.match_info["name"]
        return web.json_response({"model_name": name, "outputs": [doubled]})


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> bytes:
    event = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + orjson.dumps(event) + b"\n\n"


class UpstreamLoop:
    """One event loop in a thread for every fake upstream of a test session."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.fakes: list[FakeOpenAI] = []

    def fake(self, name: str) -> FakeOpenAI:
        fake = FakeOpenAI(self.loop, name)
        self.fakes.append(fake)
        return fake

    def close(self) -> None:
        for fake in self.fakes:
            fake.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
