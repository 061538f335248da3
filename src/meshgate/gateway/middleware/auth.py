"""Authentication: every request outside the public paths carries a valid API key."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from meshgate.auth import KeyService
from meshgate.errors import MeshgateError, Unauthenticated
from meshgate.gateway.problems import send_error

PRINCIPAL = "meshgate.principal"
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="meshgate"'}


class AuthMiddleware:
    def __init__(self, app: ASGIApp, *, keys: KeyService, public_paths: list[str]):
        self.app = app
        self.keys = keys
        self.public = frozenset(public_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.public:
            await self.app(scope, receive, send)
            return
        try:
            scope[PRINCIPAL] = await self.keys.authenticate(self._bearer(scope))
        except MeshgateError as exc:
            exc.headers.update(CHALLENGE)
            await send_error(exc, scope, send)
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _bearer(scope: Scope) -> str:
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() != "bearer" or not token.strip():
                    raise Unauthenticated("Authorization header must be 'Bearer <key>'")
                return token.strip()
        raise Unauthenticated("missing API key: send 'Authorization: Bearer <key>'")
