"""The floor of a Python proxy: an aiohttp server forwarding the body to the upstream as is.

No authentication, no parsing, no events: one pooled aiohttp ``ClientSession``, the bytes in,
the bytes (or the stream) out. Any Python gateway pays at least this.

    python -m bench.passthrough --port 9001 --upstream http://127.0.0.1:9000
"""

from __future__ import annotations

import argparse

from aiohttp import ClientSession, TCPConnector, web

HOP_BY_HOP = {"content-length", "transfer-encoding", "connection", "content-encoding"}


def make_app(upstream: str) -> web.Application:
    app = web.Application()
    target = upstream.rstrip("/") + "/v1/chat/completions"

    async def open_session(app: web.Application) -> None:
        app["session"] = ClientSession(connector=TCPConnector(limit=0))

    async def close_session(app: web.Application) -> None:
        await app["session"].close()

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        session: ClientSession = request.app["session"]
        headers = {"Content-Type": "application/json"}
        async with session.post(target, data=body, headers=headers) as up:
            kept = {k: v for k, v in up.headers.items() if k.lower() not in HOP_BY_HOP}
            if up.content_type != "text/event-stream":
                return web.Response(status=up.status, body=await up.read(), headers=kept)
            response = web.StreamResponse(status=up.status, headers=kept)
            await response.prepare(request)
            async for chunk in up.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    app.on_startup.append(open_session)
    app.on_cleanup.append(close_session)
    app.router.add_post("/v1/chat/completions", chat)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    web.run_app(
        make_app(args.upstream), host="127.0.0.1", port=args.port, print=None, access_log=None
    )


if __name__ == "__main__":
    main()
