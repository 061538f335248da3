"""Settings of tracing, metrics and model monitoring (``monitoring:`` in meshgate.yaml)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class MonitoringConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    otlp_endpoint: str | None = Field(
        None, description="OTLP/HTTP endpoint; tracing is off when unset."
    )
