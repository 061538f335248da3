"""Settings of the Context Mesh (``context:`` in meshgate.yaml)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ContextConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(
        None, description="memory://, sqlite:///path or redis://; default redis_url, else SQLite."
    )
