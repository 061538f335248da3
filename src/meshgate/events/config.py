"""Settings of the event backbone (``events:`` in meshgate.yaml)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class EventsConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(
        None,
        description="sqlite:///path, nats://host:port or redis://; default SQLite in data_dir.",
    )
