"""What training needs of other domains: the registry, and the rollout controller."""

from __future__ import annotations

from typing import Any, Protocol

from meshgate.models.config import VersionCreate


class ModelRegistrar(Protocol):
    async def model(self, tenant: str, name: str) -> dict[str, Any]:
        """The registered model with versions and aliases; NotFound when it does not exist."""
        ...

    async def register(
        self, tenant: str, model: str, version: VersionCreate, actor: str
    ) -> dict[str, Any]:
        """Add a version (with its event and audit record); Conflict when the name is taken."""
        ...


class RolloutStarter(Protocol):
    async def start_rollout(
        self, tenant: str, model: str, body: dict[str, Any], actor: str
    ) -> dict[str, Any]:
        """Start a progressive rollout of ``body["candidate"]``; returns the rollout."""
        ...

    async def rollout_of(self, tenant: str, model: str, candidate: str) -> dict[str, Any] | None:
        """The newest rollout of version ``candidate``; None when none was started."""
        ...
