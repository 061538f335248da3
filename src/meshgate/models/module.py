"""The model services as a module of the platform."""

from __future__ import annotations

from fastapi import APIRouter

from meshgate.gateway.fast_routes import HotRoute
from meshgate.models.artifacts import MIGRATIONS as ARTIFACT_MIGRATIONS
from meshgate.models.artifacts import ArtifactStore
from meshgate.models.config import (
    ArtifactProvider,
    ModelDeclaration,
    OpenAIProvider,
    PythonProvider,
)
from meshgate.models.providers.http import AiohttpTransport
from meshgate.models.registry import MIGRATIONS
from meshgate.models.runtime import ProviderFactory
from meshgate.models.service import ModelService
from meshgate.platform import Platform
from meshgate.sql import Migration


def artifact_store(platform: Platform) -> ArtifactStore:
    return ArtifactStore(platform.sql, platform.settings.data_dir.resolve() / "artifact-cache")


def factory_for(platform: Platform, declared: list[ModelDeclaration]) -> ProviderFactory:
    from meshgate.models.demo import artifact_dir

    versions = [v for d in declared for v in d.versions]
    return ProviderFactory(
        AiohttpTransport(egress=platform.egress),
        artifact_root=artifact_dir(platform.settings),
        config_entrypoints=frozenset(
            v.provider.entrypoint for v in versions if isinstance(v.provider, PythonProvider)
        ),
        config_artifacts=frozenset(
            v.provider.artifact for v in versions if isinstance(v.provider, ArtifactProvider)
        ),
        artifacts=artifact_store(platform),
        credentials=platform.credentials,
        egress=platform.egress,
        config_key_envs=frozenset(
            v.provider.api_key_env
            for v in versions
            if isinstance(v.provider, OpenAIProvider) and v.provider.api_key_env
        ),
    )


class ModelsModule:
    name = "models"
    migrations: list[Migration] = MIGRATIONS + ARTIFACT_MIGRATIONS

    def __init__(self) -> None:
        self.service: ModelService | None = None

    def routers(self) -> list[APIRouter]:
        from meshgate.models.routes import routers

        return routers()

    def hot_routes(self) -> list[HotRoute]:
        from meshgate.models.routes import hot_routes

        return hot_routes()

    async def start(self, platform: Platform) -> None:
        declared = list(platform.settings.models)
        if platform.settings.demo:
            from meshgate.models.demo import declarations

            declared += await declarations(platform.settings, artifact_store(platform))
        factory = factory_for(platform, declared)
        self.service = ModelService(platform, factory.transport, factory)
        await self.service.apply(declared)
        platform.models = self.service
        # Load the declared models now rather than on their first request.
        self.service.spawn(self.service.warm([(d.tenant, d.name) for d in declared]))

    async def close(self) -> None:
        if self.service is not None:
            await self.service.close()
