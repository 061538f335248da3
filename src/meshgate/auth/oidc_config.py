"""Settings of end-user tokens (``oidc:`` in meshgate.yaml): OIDC/JWT from a company's
identity provider. Off while ``issuer`` is unset."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from meshgate.auth.principal import SCOPES

Algorithm = Literal["RS256", "ES256"]

if TYPE_CHECKING:
    from meshgate.auth.oidc import OidcVerifier
    from meshgate.sql.base import SqlStore

# header.payload.signature, each base64url: an API key ("mg_...") never has this shape.
_JWT_SHAPE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$")


def looks_like_jwt(token: str) -> bool:
    return len(token) < 16_384 and _JWT_SHAPE.match(token) is not None


class OidcConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    issuer: str | None = Field(
        None, description="Expected 'iss' of user tokens; tokens are accepted only when set."
    )
    audience: list[str] = Field(
        default_factory=list, description="Accepted 'aud' values (at least one must match)."
    )
    jwks_url: str | None = Field(None, description="The identity provider's JSON Web Key Set.")
    algorithms: list[Algorithm] = Field(
        default_factory=lambda: list[Algorithm](["RS256", "ES256"]),
        description="Accepted signature algorithms ('none' and HMAC never are).",
    )
    jwks_cache_seconds: float = Field(
        300, ge=1, le=86_400, description="How long fetched keys are used before a refresh."
    )
    jwks_min_refresh_seconds: float = Field(
        10,
        ge=0,
        le=3600,
        description="An unknown key id triggers a refresh at most this often (rotation).",
    )
    leeway_seconds: float = Field(30, ge=0, le=300, description="Clock skew allowed on exp/nbf.")
    tenant_claim: str | None = Field(
        None, description="Claim naming the user's tenant; when unset every user is in 'tenant'."
    )
    tenant: str = Field("default", description="Tenant of users when tenant_claim is unset.")
    scopes_claim: str = Field(
        "scope", description="Claim with the user's scopes (space-separated string or list)."
    )
    allowed_scopes: list[str] = Field(
        default_factory=lambda: ["inference", "context:read", "context:write"],
        description="The Meshgate scopes a token can carry; any other in the claim is ignored.",
    )
    default_scopes: list[str] = Field(
        default_factory=lambda: ["inference"],
        description="Scopes of a token without the scopes claim.",
    )
    user_rpm: int | None = Field(None, ge=1, description="Requests per minute per user.")
    user_tpm: int | None = Field(None, ge=1, description="Model tokens per minute per user.")

    @model_validator(mode="after")
    def _complete(self) -> OidcConfig:
        for scope in (*self.allowed_scopes, *self.default_scopes):
            if scope not in SCOPES:
                raise ValueError(f"unknown scope {scope!r}")
        if not set(self.default_scopes) <= set(self.allowed_scopes):
            raise ValueError("default_scopes must be among allowed_scopes")
        if self.issuer is not None and (not self.audience or not self.jwks_url):
            raise ValueError("with an issuer, audience and jwks_url are required")
        return self


def oidc_verifier(config: OidcConfig, limits: Any, sql: SqlStore) -> OidcVerifier | None:
    """The verifier of user tokens (``limits``: the settings' defaults), or None while no
    issuer is configured; PyJWT is imported only then."""
    if config.issuer is None:
        return None
    from meshgate.auth.keys import Limits
    from meshgate.auth.oidc import OidcVerifier

    defaults = Limits(limits.key_rpm, limits.key_tpm, limits.tenant_rpm, limits.tenant_tpm)
    return OidcVerifier(config, sql=sql, limits=defaults)
