"""Settings of the event backbone (``events:`` in meshgate.yaml)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


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
