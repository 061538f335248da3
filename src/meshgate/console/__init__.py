"""The web console at ``/console``: static ES modules served by Meshgate, no build step.

The browser keeps the API key in sessionStorage and sends it as a bearer token to the same
API every client uses; the assets themselves are public (they hold no data).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATIC = Path(__file__).parent / "static"
PREFIX = "/console"
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css"}
# The assets never hold secrets or data; the page's scripts are its own and nothing else.
HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
    "style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def assets() -> list[str]:
    return sorted(p.name for p in STATIC.iterdir() if p.suffix in TYPES)


def public_paths() -> list[str]:
    """Paths the auth middleware lets through: the page and its assets, nothing else."""
    return [PREFIX, PREFIX + "/", *(f"{PREFIX}/{name}" for name in assets())]


class _WithHeaders:
    """The static files, each answer with the console's security headers."""

    def __init__(self, app: ASGIApp):
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in HEADERS.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self.headers]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def router() -> APIRouter:
    """``/console/`` and its assets (a mount: no API route, nothing in the OpenAPI document)."""
    routes = APIRouter()
    files = StaticFiles(directory=STATIC, html=True)
    routes.routes.append(Mount(PREFIX, app=_WithHeaders(files), name="console"))
    return routes
