"""Who else may set a model's traffic: a running rollout sets it at every step, so a change by
hand meanwhile would be overwritten at the next one (delivery implements the port)."""

from __future__ import annotations

from typing import Protocol


class TrafficOwner(Protocol):
    async def traffic_owner(self, tenant: str, model: str) -> str | None:
        """What sets the model's traffic now (e.g. ``"rollout ro_..."``), or None."""
        ...
