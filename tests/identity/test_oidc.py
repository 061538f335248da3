"""End users with OIDC/JWT tokens: a JWKS served by a real HTTP server in the test, tokens
signed here (RS256, ES256), the whole app answering through its HTTP surface."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from meshgate.config import Settings
from tests.conftest import app_client, free_port

ISSUER = "https://login.example.test/"
AUDIENCE = "meshgate-frontend"


class IdentityProvider:
    """A JWKS endpoint that counts its fetches, and the private keys to sign with."""

    def __init__(self) -> None:
        self.keys: dict[str, tuple[str, Any]] = {}  # kid -> (alg, private key)
        self.fetches = 0
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/.well-known/jwks.json"

    def add_key(self, kid: str, alg: str) -> None:
        if alg == "RS256":
            private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        else:
            private = ec.generate_private_key(ec.SECP256R1())
        self.keys[kid] = (alg, private)

    def jwks(self) -> dict[str, Any]:
        out = []
        for kid, (alg, private) in self.keys.items():
            algorithm = jwt.get_algorithm_by_name(alg)
            jwk = algorithm.to_jwk(private.public_key(), as_dict=True)
            out.append({**jwk, "kid": kid, "alg": alg, "use": "sig"})
        return {"keys": out}

    async def serve(self) -> web.AppRunner:
        async def handler(_: web.Request) -> web.Response:
            self.fetches += 1
            return web.json_response(self.jwks())

        app = web.Application()
        app.router.add_get("/.well-known/jwks.json", handler)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        return runner

    def token(
        self, kid: str = "rsa-1", *, headers: dict[str, Any] | None = None, **claims: Any
    ) -> str:
        alg, private = self.keys[kid]
        now = int(time.time())
        body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": now, "exp": now + 300}
        body.update(claims)
        return jwt.encode(body, private, algorithm=alg, headers={"kid": kid, **(headers or {})})


@pytest.fixture
async def idp() -> AsyncIterator[IdentityProvider]:
    provider = IdentityProvider()
    provider.add_key("rsa-1", "RS256")
    provider.add_key("ec-1", "ES256")
    runner = await provider.serve()
    yield provider
    await runner.cleanup()


@pytest.fixture
def oidc_settings(
    idp: IdentityProvider, make_settings: Callable[..., Settings]
) -> Callable[..., Settings]:
    def make(**oidc: Any) -> Settings:
        config = {
            "issuer": ISSUER,
            "audience": [AUDIENCE],
            "jwks_url": idp.url,
            "jwks_min_refresh_seconds": 0,
            **oidc,
        }
        return make_settings(oidc=config)

    return make


def as_user(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def whoami(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/v1/whoami", headers=as_user(token))


async def test_rs256_and_es256_tokens_authenticate_the_user(idp, oidc_settings) -> None:
    async with app_client(oidc_settings()) as client:
        for kid in ("rsa-1", "ec-1"):
            r = await whoami(client, idp.token(kid, scope="inference context:read"))
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["key_id"] == "user:alice" and body["tenant"] == "default"
            assert body["scopes"] == ["context:read", "inference"]
        # API keys keep working beside user tokens.
        assert (await client.get("/v1/whoami")).json()["key_id"] != "user:alice"
        assert idp.fetches == 1  # the key set is cached


@pytest.mark.parametrize(
    ("why", "make"),
    [
        ("token expired", lambda idp: idp.token(exp=int(time.time()) - 120)),
        ("another audience", lambda idp: idp.token(aud="someone-else")),
        ("another issuer", lambda idp: idp.token(iss="https://evil.example.test/")),
        (
            "not accepted",
            lambda idp: jwt.encode(
                {"sub": "alice", "iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60},
                None,
                algorithm="none",
            ),
        ),
        ("unknown key", lambda idp: idp.token(headers={"kid": "nope"})),
        ("sub", lambda idp: idp.token(sub="")),
        ("invalid token", lambda idp: idp.token()[:-8] + "AAAAAAAA"),
        ("malformed", lambda idp: "a.b.c"),
    ],
)
async def test_bad_tokens_are_refused_with_401(idp, oidc_settings, why: str, make) -> None:
    async with app_client(oidc_settings()) as client:
        r = await whoami(client, make(idp))
        assert r.status_code == 401, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert why in r.json()["detail"]
        assert r.headers["www-authenticate"].startswith("Bearer")


async def test_a_token_signed_with_another_key_under_a_known_kid_is_refused(
    idp, oidc_settings
) -> None:
    forger = IdentityProvider()
    forger.add_key("rsa-1", "RS256")
    async with app_client(oidc_settings()) as client:
        r = await whoami(client, forger.token("rsa-1"))
        assert r.status_code == 401 and "InvalidSignatureError" in r.json()["detail"]


async def test_hmac_with_the_public_key_as_secret_is_refused(idp, oidc_settings) -> None:
    """The classic algorithm confusion: HS256 'signed' with the provider's public key."""
    public_pem = idp.jwks()["keys"][0]["n"].encode()
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "mallory", "exp": now + 60}
    forged = jwt.encode(claims, public_pem, algorithm="HS256", headers={"kid": "rsa-1"})
    async with app_client(oidc_settings()) as client:
        r = await whoami(client, forged)
        assert r.status_code == 401 and "not accepted" in r.json()["detail"]


async def test_rotated_keys_are_picked_up_and_unknown_kids_cost_one_fetch(
    idp, oidc_settings
) -> None:
    async with app_client(oidc_settings(jwks_min_refresh_seconds=60)) as client:
        assert (await whoami(client, idp.token())).status_code == 200
        for n in range(5):  # made-up key ids: one refresh at most within the window
            r = await whoami(client, idp.token(headers={"kid": f"made-up-{n}"}))
            assert r.status_code == 401
        assert idp.fetches <= 2
    idp.fetches = 0
    async with app_client(oidc_settings()) as client:
        assert (await whoami(client, idp.token())).status_code == 200
        idp.add_key("rsa-2", "RS256")  # the provider rotates
        r = await whoami(client, idp.token("rsa-2", sub="bob"))
        assert r.status_code == 200 and r.json()["key_id"] == "user:bob"
        assert idp.fetches == 2


async def test_claims_map_to_tenant_and_scopes_never_beyond_the_allowed(idp, oidc_settings) -> None:
    settings = oidc_settings(tenant_claim="org", scopes_claim="roles")
    async with app_client(settings) as client:
        created = await client.post(
            "/v1/admin/keys", json={"tenant": "acme", "scopes": ["inference"]}
        )
        assert created.status_code == 201, created.text
        token = idp.token(org="acme", roles=["inference", "admin", "context:write"])
        body = (await whoami(client, token)).json()
        assert body["tenant"] == "acme" and body["scopes"] == ["context:write", "inference"]
        # The token got no admin: an admin route is refused.
        assert (await client.get("/v1/admin/keys", headers=as_user(token))).status_code == 403
        # No scopes claim: the default scopes.
        assert (await whoami(client, idp.token(org="acme"))).json()["scopes"] == ["inference"]
        unknown = await whoami(client, idp.token(org="nobody"))
        assert unknown.status_code == 401 and "tenant" in unknown.json()["detail"]
        missing = await whoami(client, idp.token())
        assert missing.status_code == 401 and "'org'" in missing.json()["detail"]


async def test_the_identity_provider_down_refuses_tokens_but_not_keys(oidc_settings) -> None:
    provider = IdentityProvider()  # never served
    provider.add_key("rsa-1", "RS256")
    settings = oidc_settings(jwks_url=provider.url)
    async with app_client(settings) as client:
        r = await whoami(client, provider.token())
        assert r.status_code == 401 and "unavailable" in r.json()["detail"]
        assert (await client.get("/v1/whoami")).status_code == 200
