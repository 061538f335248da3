"""The references of the gateway section, served by uvicorn exactly as ``meshgate serve`` is.

- ``raw``: a bare ASGI callable answering the JSON body of ``GET /v1/whoami``;
- ``fastapi``: a FastAPI app with the same route and no middleware, so that the difference to
  Meshgate is the middleware stack alone (request id, metrics, deprecation, fields, body
  limit, authentication, rate limit).

    python -m bench.bare_apps --port 9002 --kind raw
"""

from __future__ import annotations

import argparse
from typing import Any

import orjson

BODY = orjson.dumps(
    {
        "key_id": "key_bootstrap_admin",
        "tenant": "default",
        "scopes": ["admin"],
        "rpm": 1_000_000_000,
        "tpm": 1_000_000_000,
    }
)
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def raw_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})


def fastapi_app() -> Any:
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/v1/whoami")
    async def whoami() -> dict[str, object]:
        return orjson.loads(BODY)

    return app


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--kind", choices=["raw", "fastapi"], default="raw")
    args = parser.parse_args()
    app = raw_app if args.kind == "raw" else fastapi_app()
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        server_header=False,
    )


if __name__ == "__main__":
    main()
