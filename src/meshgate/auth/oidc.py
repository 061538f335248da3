"""End users authenticated by an OIDC/JWT bearer token from the identity provider.

A token is accepted when it is signed (RS256 or ES256, never ``none`` or HMAC) by a key of the
configured JWKS, names the configured issuer and one of the audiences, and is within its
validity (``exp`` required, ``nbf`` honoured, with leeway). Its ``sub`` becomes the proven end
user; the tenant and scopes come from claims as configured. Anything else is a 401 that says
why without echoing the token.

Keys are fetched from the JWKS URL (configuration, never a request) and cached; a token with an
unknown key id refreshes the set at most every ``jwks_min_refresh_seconds``, so the provider's
key rotation is picked up and a flood of made-up key ids costs one fetch.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import aiohttp
import jwt

from meshgate.auth.keys import Limits
from meshgate.auth.oidc_config import OidcConfig
from meshgate.auth.principal import Principal
from meshgate.errors import Unauthenticated
from meshgate.sql.base import SqlStore

MAX_SUB_LEN = 256
TENANT_CACHE_SECONDS = 5.0


class OidcVerifier:
    def __init__(self, config: OidcConfig, *, sql: SqlStore, limits: Limits):
        assert config.issuer and config.jwks_url
        self.config = config
        self._sql = sql
        self._limits = limits
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = -1e9
        self._fetch_lock = asyncio.Lock()
        self._tenants: dict[str, tuple[float, tuple[int, int] | None]] = {}

    async def authenticate(self, token: str) -> Principal:
        claims = await self._verify(token)
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub or len(sub) > MAX_SUB_LEN:
            raise Unauthenticated("token has no usable 'sub'")
        tenant = self._tenant_of(claims)
        limits = await self._tenant_limits(tenant)
        if limits is None:
            raise Unauthenticated("the token's tenant is unknown")
        lim = self._limits
        return Principal(
            key_id=f"user:{sub}"[:128],
            tenant=tenant,
            scopes=self._scopes_of(claims),
            rpm=self.config.user_rpm or lim.key_rpm,
            tpm=self.config.user_tpm or lim.key_tpm,
            tenant_rpm=limits[0] or lim.tenant_rpm,
            tenant_tpm=limits[1] or lim.tenant_tpm,
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
            user_id=sub,
        )

    # --- the signature and the registered claims ---------------------------------------------

    async def _verify(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise Unauthenticated("malformed token") from exc
        alg = header.get("alg")
        if alg not in self.config.algorithms:
            raise Unauthenticated(f"token algorithm {str(alg)[:16]!r} is not accepted")
        key = await self._key(header.get("kid"))
        if key.algorithm_name != alg:
            raise Unauthenticated("token algorithm does not match its key")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[alg],
                audience=self.config.audience,
                issuer=self.config.issuer,
                leeway=self.config.leeway_seconds,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("token expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise Unauthenticated("token is for another audience") from exc
        except jwt.InvalidIssuerError as exc:
            raise Unauthenticated("token is from another issuer") from exc
        except jwt.PyJWTError as exc:
            raise Unauthenticated(f"invalid token: {type(exc).__name__}") from exc
        return claims

    async def _key(self, kid: object) -> jwt.PyJWK:
        if kid is not None and (not isinstance(kid, str) or not kid):
            raise Unauthenticated("token has an invalid key id")
        await self._refresh(stale_only=True)
        if kid is None:  # allowed only while the provider publishes a single key
            if len(self._keys) == 1:
                return next(iter(self._keys.values()))
            raise Unauthenticated("token has no key id")
        if kid not in self._keys:
            await self._refresh(stale_only=False)
        key = self._keys.get(kid)
        if key is None:
            raise Unauthenticated("token signed by an unknown key")
        return key

    async def _refresh(self, *, stale_only: bool) -> None:
        """Fetch the key set when the cache is stale (or, for an unknown kid, not too soon)."""
        config = self.config
        age = time.monotonic() - self._fetched_at
        if age < (config.jwks_cache_seconds if stale_only else config.jwks_min_refresh_seconds):
            return
        async with self._fetch_lock:
            age = time.monotonic() - self._fetched_at
            if age < (config.jwks_cache_seconds if stale_only else config.jwks_min_refresh_seconds):
                return  # another request refreshed meanwhile
            self._keys = await self._fetch()
            self._fetched_at = time.monotonic()

    async def _fetch(self) -> dict[str, jwt.PyJWK]:
        assert self.config.jwks_url
        try:
            timeout = aiohttp.ClientTimeout(total=5)
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(self.config.jwks_url, allow_redirects=False) as response,
            ):
                response.raise_for_status()
                document = await response.json(content_type=None)
            key_set = jwt.PyJWKSet.from_dict(document)
        except (aiohttp.ClientError, TimeoutError, ValueError, jwt.PyJWTError) as exc:
            if self._keys:  # keep verifying with the keys we have
                return self._keys
            raise Unauthenticated("the identity provider's keys are unavailable") from exc
        return {k.key_id: k for k in key_set.keys if k.key_id and k.public_key_use in (None, "sig")}

    # --- claims to tenant and scopes ----------------------------------------------------------

    def _tenant_of(self, claims: dict[str, Any]) -> str:
        if self.config.tenant_claim is None:
            return self.config.tenant
        tenant = claims.get(self.config.tenant_claim)
        if not isinstance(tenant, str) or not tenant:
            raise Unauthenticated(f"token has no '{self.config.tenant_claim}' claim")
        return tenant

    def _scopes_of(self, claims: dict[str, Any]) -> frozenset[str]:
        raw = claims.get(self.config.scopes_claim)
        if raw is None:
            return frozenset(self.config.default_scopes)
        values = raw.split() if isinstance(raw, str) else raw if isinstance(raw, list) else []
        allowed = set(self.config.allowed_scopes)
        return frozenset(v for v in values if isinstance(v, str) and v in allowed)

    async def _tenant_limits(self, tenant: str) -> tuple[int, int] | None:
        now = time.monotonic()
        cached = self._tenants.get(tenant)
        if cached is not None and cached[0] > now:
            return cached[1]
        row = await self._sql.fetch_one("SELECT rpm, tpm FROM tenants WHERE id = ?", (tenant,))
        limits = (row["rpm"], row["tpm"]) if row is not None else None
        if len(self._tenants) > 10_000:
            self._tenants.clear()
        self._tenants[tenant] = (now + TENANT_CACHE_SECONDS, limits)
        return limits
