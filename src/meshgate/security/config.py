"""The ``security:`` section of the settings; everything here is the operator's to decide.

Kept free of heavy imports: :mod:`meshgate.config` loads this module when settings are read.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr

CREDENTIAL_NAME = r"^[a-z0-9][a-z0-9._-]{0,63}$"
ENV_NAME = r"^[A-Z_][A-Z0-9_]*$"
TENANT = r"^[A-Za-z0-9._-]{1,64}$"


class CredentialDeclaration(BaseModel):
    """An upstream credential the operator declares in the config file (read from the env)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=CREDENTIAL_NAME, description="Name versions refer to.")
    env: str = Field(pattern=ENV_NAME, description="Environment variable holding the secret.")
    tenants: list[str] = Field(default_factory=list, description="Tenants granted the credential.")
    description: str = Field("", max_length=200)


class EdgeConfig(BaseModel):
    """Limits on what one client may hold of the server before any route runs."""

    model_config = ConfigDict(extra="forbid")

    max_header_bytes: int = Field(
        64 * 1024, ge=1024, description="Largest total size of a request's headers."
    )
    max_headers: int = Field(100, ge=8, description="Most header lines in one request.")
    header_timeout_seconds: float = Field(
        10.0, gt=0, description="Time a client has to send the whole request head."
    )
    body_timeout_seconds: float = Field(
        30.0, gt=0, description="Longest silence while a request body is being read."
    )
    max_connections_per_client: int = Field(
        64, ge=1, description="Open connections one client address may hold."
    )
    max_connections: int = Field(2048, ge=1, description="Open connections of one process.")
    keepalive_timeout_seconds: float = Field(
        15.0, gt=0, description="Idle time before a kept-alive connection is closed."
    )
    max_requests_per_connection: int = Field(
        10_000, ge=1, description="Requests served on one connection before it is closed."
    )


class GraphQLLimits(BaseModel):
    """Bounds on one GraphQL request; its cost is also charged to the rate limit."""

    model_config = ConfigDict(extra="forbid")

    max_depth: int = Field(8, ge=1, description="Deepest selection nesting.")
    max_aliases: int = Field(20, ge=1, description="Most aliased fields in one document.")
    max_cost: int = Field(2000, ge=1, description="Largest estimated cost (items it may return).")
    cost_per_request: int = Field(
        100, ge=1, description="Cost units charged as one request to the rate limit."
    )


class SecurityConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    credentials: list[CredentialDeclaration] = Field(
        default_factory=list, description="Upstream credentials declared by the operator."
    )
    credential_env_prefixes: list[str] = Field(
        default_factory=list,
        description="Environment variable prefixes a root admin may name as a credential "
        "through the API (e.g. UPSTREAM_KEY_). Empty: API credentials are stored sealed only.",
    )
    egress_allow: list[str] = Field(
        default_factory=list,
        description="Hosts or CIDR ranges (e.g. 10.0.0.0/8, models.internal) that webhooks and "
        "providers may reach although they are private, loopback or otherwise non-public.",
    )
    metrics_token: SecretStr | None = Field(
        None, description="Bearer token that reads /metrics (besides a root-tenant admin key)."
    )
    edge: EdgeConfig = Field(default_factory=EdgeConfig)
    graphql: GraphQLLimits = Field(default_factory=GraphQLLimits)
