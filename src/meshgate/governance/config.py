"""Settings of the audit trail (``audit:`` in meshgate.yaml)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AuditConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    retention_days: int = Field(
        183, ge=183, description="Audit records are kept at least this long."
    )
