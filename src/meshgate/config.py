"""One typed settings model: ``meshgate.yaml`` plus ``MESHGATE_*`` environment overrides.

Environment wins over the file. Nested sections use a double underscore
(``MESHGATE_CONTEXT__CACHE_SIZE=5000``). Settings are validated once at start; a bad value
raises :class:`ConfigError` naming the key, and the CLI exits non-zero with it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from meshgate.auth.oidc_config import OidcConfig
from meshgate.context.config import ContextConfig
from meshgate.events.config import EventsConfig
from meshgate.governance.config import AuditConfig
from meshgate.models.config import ModelDeclaration
from meshgate.monitoring.config import MonitoringConfig
from meshgate.security.config import SecurityConfig
from meshgate.serve_tls import TlsConfig
from meshgate.training.spec import TrainingConfig

MiB = 1024 * 1024
SCHEMES = ("sqlite", "postgresql", "postgres", "redis", "rediss", "nats", "memory")


class ConfigError(Exception):
    """The configuration is invalid; the message names every bad key."""


class LimitsConfig(BaseModel):
    """Default rate limits; a key or tenant may carry its own."""

    model_config = ConfigDict(extra="forbid")

    key_rpm: int = Field(600, ge=1, description="Requests per minute per API key.")
    key_tpm: int = Field(200_000, ge=1, description="Model tokens per minute per API key.")
    tenant_rpm: int = Field(6_000, ge=1, description="Requests per minute per tenant.")
    tenant_tpm: int = Field(2_000_000, ge=1, description="Model tokens per minute per tenant.")


class Settings(BaseSettings):
    """Everything Meshgate reads at start."""

    model_config = SettingsConfigDict(
        env_prefix="MESHGATE_", env_nested_delimiter="__", extra="forbid"
    )

    host: str = Field("127.0.0.1", description="Address to listen on.")
    port: int = Field(8080, ge=1, le=65535, description="Port to listen on.")
    workers: int = Field(1, ge=1, le=64, description="uvicorn worker processes.")
    data_dir: Path = Field(Path("data"), description="Where embedded backends keep their files.")
    admin_key: SecretStr | None = Field(
        None, description="Bootstrap admin key; when unset the first start creates one."
    )
    key_pepper: SecretStr | None = Field(
        None,
        description="Secret mixed into every key hash; generated into data_dir when unset. "
        "Set it explicitly when several processes share one database.",
    )
    database_url: str | None = Field(
        None, description="Platform SQL store; default sqlite:///<data_dir>/meshgate.db."
    )
    redis_url: str | None = Field(
        None, description="When set, the default for the limiter, context store and caches."
    )
    namespace: str = Field(
        "mg",
        pattern=r"^[a-z][a-z0-9_]{0,30}$",
        description="Prefix of every Redis key and NATS stream, so deployments can share a server.",
    )
    limiter_url: str | None = Field(None, description="memory:// or redis://; default redis_url.")
    backend_timeout_seconds: float = Field(
        1.0,
        gt=0,
        le=30,
        description="Longest a request waits on a network backend (Redis, NATS, PostgreSQL) "
        "before a 503 with Retry-After: a dead or frozen backend never holds requests longer.",
    )
    max_body_bytes: int = Field(MiB, ge=1024, description="Largest accepted request body.")
    auth_cache_ttl_seconds: float = Field(
        5.0, ge=0, le=300, description="How long a verified key stays cached (revocation delay)."
    )
    public_paths: list[str] = Field(
        default_factory=lambda: [
            "/healthz",
            "/health",
            "/readyz",
            "/v2/health/live",
            "/v2/health/ready",
            "/openapi.json",
            "/docs",
        ],
        description="Paths served without an API key.",
    )
    log_level: str = Field("info", pattern="^(debug|info|warning|error)$")
    demo: bool = Field(False, description="Register the demo models at start.")
    demo_chat_url: str | None = Field(
        None, description="OpenAI-compatible base URL for a demo chat model."
    )
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    context: ContextConfig = Field(default_factory=ContextConfig)
    events: EventsConfig = Field(default_factory=EventsConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    oidc: OidcConfig = Field(default_factory=OidcConfig)
    tls: TlsConfig = Field(default_factory=TlsConfig)
    models: list[ModelDeclaration] = Field(default_factory=list)
    security: SecurityConfig = Field(default_factory=SecurityConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)

    @field_validator("database_url", "redis_url", "limiter_url")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        if value is not None and value.split(":", 1)[0] not in SCHEMES:
            raise ValueError(f"unsupported URL scheme in {value.split(':', 1)[0]!r}")
        return value

    @model_validator(mode="after")
    def _limits_shared_by_workers(self) -> Settings:
        # Each worker is a process of its own: an in-memory limiter per worker would multiply
        # every limit by the number of workers without a word.
        if self.workers > 1 and self.limiter_backend_url.startswith("memory:"):
            raise ValueError(
                f"workers: {self.workers} workers need a limiter they share; set redis_url "
                "(MESHGATE_REDIS_URL) or limiter_url to a Redis, or run one worker per node"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, YamlConfigSettingsSource(settings_cls))

    @property
    def sql_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'meshgate.db'}"

    @property
    def limiter_backend_url(self) -> str:
        return self.limiter_url or self.redis_url or "memory://"


def load_settings(path: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Read ``path`` (or ``$MESHGATE_CONFIG``, or ``./meshgate.yaml`` when present)."""
    given = path or os.environ.get("MESHGATE_CONFIG")
    file = None if given is None else Path(given)
    if file is None and Path("meshgate.yaml").exists():
        file = Path("meshgate.yaml")
    if file is not None and not file.exists():
        raise ConfigError(f"config file {file}: not found")

    class FileSettings(Settings):
        model_config = SettingsConfigDict(yaml_file=file)

    try:
        return FileSettings(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe(exc)) from exc


def describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        if not err["loc"]:  # a rule across keys: its message names them
            lines.append(err["msg"].removeprefix("Value error, "))
            continue
        key = ".".join(str(p) for p in err["loc"])
        env = "MESHGATE_" + "__".join(str(p) for p in err["loc"]).upper()
        lines.append(f"{key} ({env}): {err['msg']}")
    return "invalid configuration:\n  " + "\n  ".join(lines)
