"""Models declared in meshgate.yaml (``models:``), applied to the registry at start."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ModelDeclaration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    task: str = "chat"
    versions: list[dict[str, Any]] = Field(default_factory=list)
    traffic: dict[str, Any] | None = None
