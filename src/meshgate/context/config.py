"""Settings of the Context Mesh (``context:`` in meshgate.yaml, ``MESHGATE_CONTEXT__*``)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

KiB = 1024
SCHEMES = ("memory", "sqlite", "redis", "rediss")


class ContextConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(
        None, description="memory://, sqlite:///path or redis://; default redis_url, else SQLite."
    )
    cache_size: int = Field(
        10_000,
        ge=0,
        description="Profiles and sessions kept in each process's read-through cache; 0 turns "
        "the cache off.",
    )
    cache_ttl_seconds: float = Field(
        30.0,
        gt=0,
        description="Longest a cached entry is served without a read of the store: a bound on "
        "staleness should an invalidation message be lost.",
    )
    history_limit: int = Field(
        50, ge=1, le=10_000, description="Interactions kept per session; older ones are dropped."
    )
    default_ttl_seconds: int = Field(1800, ge=1, description="Session lifetime when not given.")
    max_ttl_seconds: int = Field(7 * 86400, ge=1, description="Longest session lifetime allowed.")
    max_value_bytes: int = Field(
        16 * KiB, ge=64, description="Largest value (as JSON) under one attribute or preference."
    )
    max_profile_bytes: int = Field(
        64 * KiB, ge=256, description="Largest profile (attributes and preferences, as JSON)."
    )
    max_keys: int = Field(200, ge=1, description="Most attributes plus preferences per user.")
    max_interaction_bytes: int = Field(
        64 * KiB, ge=64, description="Largest interaction (content and metadata, as JSON)."
    )
    max_state_bytes: int = Field(16 * KiB, ge=64, description="Largest session state, as JSON.")
    handle_secret: SecretStr | None = Field(
        None,
        description="Key that signs context handles; generated into data_dir when unset. Set "
        "it explicitly when processes do not share data_dir.",
    )
    policies: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Context policies per consumer (e.g. 'model:support-chat': "
        "['preferences.language', 'interactions.last:5']), for every tenant; the admin API "
        "sets per-tenant ones, which take precedence.",
    )

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        if value is not None and value.split(":", 1)[0] not in SCHEMES:
            raise ValueError(f"the context store is one of {', '.join(SCHEMES)} (a URL)")
        return value
