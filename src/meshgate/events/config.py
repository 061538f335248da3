"""Settings of the event backbone (``events:`` in meshgate.yaml)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

AMQP_SCHEMES = ("amqp", "amqps")


class AmqpConfig(BaseModel):
    """The AMQP exchange publisher (``events.amqp``): off while ``url`` is unset."""

    model_config = ConfigDict(extra="forbid")

    url: SecretStr | None = Field(
        None,
        description="amqp://user:password@host:5672/vhost or amqps://...; when set, the "
        "cluster publishes its events to the exchange (a secret: never logged).",
    )
    exchange: str = Field(
        "meshgate.events",
        min_length=1,
        max_length=255,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Exchange the events go to; declared as a durable topic exchange when "
        "missing. The routing key is the event type.",
    )
    types: list[str] = Field(
        default_factory=lambda: ["meshgate.*"],
        min_length=1,
        description="Event types published: exact types or prefixes written 'a.b.*'.",
    )
    tenants: list[str] = Field(
        default_factory=list, description="Tenants whose events are published; none: every one."
    )
    batch: int = Field(
        200, ge=1, le=5000, description="Most events published under one set of confirms."
    )
    backoff_seconds: float = Field(
        0.5, gt=0, le=60, description="First retry delay while RabbitMQ fails; doubles."
    )
    backoff_max_seconds: float = Field(
        30.0, gt=0, le=3600, description="Longest delay between two attempts."
    )
    timeout_seconds: float = Field(
        10.0, gt=0, le=300, description="Longest a connection or a batch's confirms may take."
    )

    @field_validator("url")
    @classmethod
    def _amqp_scheme(cls, value: SecretStr | None) -> SecretStr | None:
        # The message names the scheme only: the URL carries the credentials.
        if value is not None:
            scheme = value.get_secret_value().split(":", 1)[0].lower()
            if scheme not in AMQP_SCHEMES:
                raise ValueError(f"must be an amqp:// or amqps:// URL, not {scheme[:16]!r}")
        return value

    @field_validator("types")
    @classmethod
    def _type_patterns(cls, value: list[str]) -> list[str]:
        for pattern in value:
            if not pattern or "*" in pattern[:-1]:
                raise ValueError(f"{pattern!r}: an exact type or a prefix ending in '*'")
        return value


class EventsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(
        None,
        description="sqlite:///path, nats://host:port, redis:// or rabbitmq-stream://host:5552; "
        "default SQLite in data_dir.",
    )
    poll_interval_seconds: float = Field(
        0.2,
        gt=0,
        le=10,
        description="How often a live tail looks for events appended by other processes.",
    )
    key_cache_seconds: float = Field(
        5.0,
        ge=0,
        le=60,
        description="How long a user's data key is kept in memory for encrypting.",
    )
    webhook_max_attempts: int = Field(
        6, ge=1, le=50, description="Delivery attempts before an event is dead-lettered."
    )
    webhook_backoff_seconds: float = Field(
        0.5, gt=0, le=60, description="First retry delay; doubles each attempt, with jitter."
    )
    webhook_backoff_max_seconds: float = Field(
        60.0, gt=0, le=3600, description="Longest delay between two attempts."
    )
    webhook_timeout_seconds: float = Field(
        5.0, gt=0, le=60, description="How long one delivery may take."
    )
    nats_duplicate_window_seconds: float = Field(
        3600.0,
        gt=0,
        le=7 * 86400,
        description="How long NATS JetStream remembers event ids to drop a producer's repeat.",
    )
    stream_heartbeat_seconds: float = Field(
        15.0, gt=0, le=300, description="Comment line sent on an idle event stream."
    )
    amqp: AmqpConfig = Field(default_factory=AmqpConfig)
