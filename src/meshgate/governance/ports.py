"""What other domains need of the governance: a place to record what they did."""

from __future__ import annotations

from typing import Any, Protocol


class AuditRecorder(Protocol):
    async def record(
        self,
        *,
        actor: str,
        tenant: str,
        action: str,
        resource: str,
        details: dict[str, Any],
        model_version: str | None = None,
    ) -> dict[str, Any]:
        """Append one audit record; returns it once it is durable."""
        ...
