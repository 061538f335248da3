"""Authentication: every request outside the public paths carries a valid API key, or, when
OIDC is configured, an end user's token from the identity provider."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Receive, Scope, Send

from meshgate.auth import KeyService
from meshgate.auth.oidc_config import looks_like_jwt
from meshgate.core import scope as request_scope
from meshgate.errors import MeshgateError, Unauthenticated
from meshgate.gateway.problems import send_error

if TYPE_CHECKING:
    from meshgate.auth.oidc import OidcVerifier

METRICS_PATH = "/metrics"
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="meshgate"'}


class AuthMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        keys: KeyService,
        public_paths: list[str],
        oidc: OidcVerifier | None = None,
        metrics_token: str | None = None,
    ):
        self.app = app
        self.keys = keys
        self.oidc = oidc
        self.public = frozenset(public_paths)
        self.metrics_token = metrics_token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.public:
            await self.app(scope, receive, send)
            return
        try:
            token = self._bearer(scope)
            if scope["path"] == METRICS_PATH and self._is_metrics_token(token):
                # The scraper's token reads /metrics and nothing else: it is no key.
                principal = self.keys.operator("metrics-token")
            elif self.oidc is not None and looks_like_jwt(token):
                principal = await self.oidc.authenticate(token)
            else:
                principal = await self.keys.authenticate(token)
            request_scope.set_principal(scope, principal)
        except MeshgateError as exc:
            exc.headers.update(CHALLENGE)
            await send_error(exc, scope, send)
            return
        await self.app(scope, receive, send)

    def _is_metrics_token(self, token: str) -> bool:
        return self.metrics_token is not None and hmac.compare_digest(
            token.encode(), self.metrics_token.encode()
        )

    @staticmethod
    def _bearer(scope: Scope) -> str:
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        for name, value in headers:
            if name == b"x-api-key" and value.strip():
                # Anthropic's clients send their key this way.
                return value.decode("latin-1").strip()
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() != "bearer" or not token.strip():
                    raise Unauthenticated("Authorization header must be 'Bearer <key>'")
                return token.strip()
        raise Unauthenticated("missing API key: send 'Authorization: Bearer <key>'")
