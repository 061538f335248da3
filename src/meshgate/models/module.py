"""The model services' parts, built for the composition root."""

from __future__ import annotations

from fastapi import APIRouter

from meshgate.config import Settings
from meshgate.context.ports import ContextReader
from meshgate.core.routing import HotRoute
from meshgate.events.leases import holder_name
from meshgate.events.ports import EventPublisher
from meshgate.governance.ports import AuditRecorder
from meshgate.models import demo
from meshgate.models.artifacts import ArtifactStore
from meshgate.models.breaker_reports import BreakerReports
from meshgate.models.config import ArtifactProvider, ModelDeclaration, PythonProvider
from meshgate.models.context_policies import RegisteredModelPolicies
from meshgate.models.deployment_routing import cooldowns_for, key_envs
from meshgate.models.gate import Gate
from meshgate.models.inference import ModelChooser
from meshgate.models.providers.http import AiohttpTransport
from meshgate.models.registry import Registry
from meshgate.models.routes import hot_routes, routers
from meshgate.models.runtime import ProviderFactory
from meshgate.models.service import BreakerListener, ModelService
from meshgate.security.credentials import CredentialVault
from meshgate.security.egress import EgressPolicy
from meshgate.sql import SqlStore

ROUTERS: list[APIRouter] = routers()
HOT_ROUTES: list[HotRoute] = hot_routes()


def registered_context_policies(sql: SqlStore) -> RegisteredModelPolicies:
    """The models' context policies, for the Context Mesh's policy book."""
    return RegisteredModelPolicies(Registry(sql))


def artifact_store(settings: Settings, sql: SqlStore) -> ArtifactStore:
    return ArtifactStore(sql, settings.data_dir.resolve() / "artifact-cache")


def factory_for(
    settings: Settings,
    declared: list[ModelDeclaration],
    artifacts: ArtifactStore,
    *,
    credentials: CredentialVault,
    egress: EgressPolicy,
) -> ProviderFactory:
    """Providers may load only the entry points and files the config names, or artifacts in
    the shared store."""
    versions = [v for d in declared for v in d.versions]
    return ProviderFactory(
        AiohttpTransport(egress=egress),
        artifact_root=demo.artifact_dir(settings),
        config_entrypoints=frozenset(
            v.provider.entrypoint for v in versions if isinstance(v.provider, PythonProvider)
        ),
        config_artifacts=frozenset(
            v.provider.artifact for v in versions if isinstance(v.provider, ArtifactProvider)
        ),
        artifacts=artifacts,
        credentials=credentials,
        egress=egress,
        config_key_envs=frozenset(env for v in versions for env in key_envs(v.provider)),
        cooldowns=cooldowns_for(settings.redis_url, settings.namespace),
    )


def build_models(
    settings: Settings,
    sql: SqlStore,
    artifacts: ArtifactStore,
    *,
    credentials: CredentialVault,
    egress: EgressPolicy,
    events: EventPublisher,
    audit: AuditRecorder,
    context: ContextReader,
    on_breaker: BreakerListener,
    gate: Gate,
    choose_model: ModelChooser | None = None,
) -> ModelService:
    """The model service, not yet started (start it with :func:`declared_models`)."""
    factory = factory_for(
        settings, list(settings.models), artifacts, credentials=credentials, egress=egress
    )
    return ModelService(
        sql,
        factory.transport,
        factory,
        events=events,
        audit=audit,
        context=context,
        on_breaker=on_breaker,
        # Each breaker move goes to the log too: monitoring alerts on the cluster's view.
        breakers=BreakerReports(events, holder_name()),
        gate=gate,
        choose_model=choose_model,
    )


async def declared_models(settings: Settings, artifacts: ArtifactStore) -> list[ModelDeclaration]:
    """The models of the config, plus the demo's (trained on first use) when it is on."""
    declared = list(settings.models)
    if settings.demo:
        declared += await demo.declarations(settings, artifacts)
    return declared


__all__ = ["artifact_store", "build_models", "declared_models", "factory_for"]
