"""What the hot path reads: a model's registry entry compiled into ready objects.

Versions are immutable, so a version's provider, breaker and retry policy are built once per
process and reused across registry refreshes; only aliases and the traffic split change.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from meshgate.errors import BadRequest
from meshgate.models.artifacts import ArtifactStore, is_stored
from meshgate.models.config import (
    ArtifactProvider,
    DeploymentsProvider,
    LoggingPolicy,
    OpenAIProvider,
    PythonProvider,
    Signature,
    TrafficPolicy,
    V2Provider,
    VersionCreate,
)
from meshgate.models.deployment_routing import Cooldowns, MemoryCooldowns
from meshgate.models.providers.base import ChatProvider, Provider
from meshgate.models.providers.http import HttpTransport
from meshgate.models.providers.vendors import VENDOR_TYPES
from meshgate.models.resilience import Backoff, CircuitBreaker, Retry, State
from meshgate.models.router import Split
from meshgate.security.credentials import CredentialVault, EnvCredential, UpstreamCredential
from meshgate.security.egress import EgressPolicy

log = logging.getLogger("meshgate.models")
CHAT_TYPES = VENDOR_TYPES | {"openai"}


class ProviderRefused(BadRequest):
    pass


@dataclass
class VersionRuntime:
    model: str
    version: str
    spec: VersionCreate
    provider: Provider
    breaker: CircuitBreaker
    retry: Retry
    timeout: float
    started: bool = False

    @property
    def signature(self) -> Signature:
        return self.spec.signature


@dataclass
class ModelRuntime:
    tenant: str
    name: str
    task: str
    allow: tuple[str, ...]
    logging: LoggingPolicy
    versions: dict[str, VersionRuntime]
    aliases: dict[str, str]
    split: Split
    sticky: str
    shadow: tuple[str, ...]
    fallback: tuple[str, ...]
    loaded_at: float
    record: dict[str, Any] = field(repr=False, default_factory=dict)

    def version(self, name: str) -> VersionRuntime | None:
        return self.versions.get(self.aliases.get(name, name))


def traffic_of(record: dict[str, Any]) -> TrafficPolicy | None:
    if record["traffic"]:
        return TrafficPolicy.model_validate(record["traffic"])
    versions = [v["version"] for v in record["versions"]]
    if not versions:
        return None
    # No split set yet: the production alias, else the newest version, takes everything.
    target = record["aliases"].get("production", versions[-1])
    return TrafficPolicy(split={target: 100}, sticky="none")


class ProviderFactory:
    """Builds providers from version specs; knows which sources each kind may come from."""

    def __init__(
        self,
        transport: HttpTransport,
        *,
        artifact_root: Path,
        config_entrypoints: frozenset[str],
        config_artifacts: frozenset[str],
        artifacts: ArtifactStore | None = None,
        credentials: CredentialVault | None = None,
        egress: EgressPolicy | None = None,
        config_key_envs: frozenset[str] = frozenset(),
        cooldowns: Cooldowns | None = None,
    ):
        self.artifacts = artifacts
        """Where ``sha256:`` artifacts are read from (the SQL store, shared by every node)."""
        self.transport = transport
        self.cooldowns = cooldowns or MemoryCooldowns()
        self.artifact_root = artifact_root.resolve()
        self.config_entrypoints = config_entrypoints
        self.config_artifacts = config_artifacts
        self.credentials = credentials
        self.egress = egress or EgressPolicy([])
        self.config_key_envs = config_key_envs

    async def check_api(self, spec: VersionCreate, tenant: str) -> None:
        """Refuse what the API may not register: a caller's code, files outside the artifact
        directory, files that are missing, skops files that would build untrusted types,
        environment variables, credentials not granted to the tenant, and URLs the egress
        policy refuses."""
        provider = spec.provider
        if isinstance(provider, DeploymentsProvider):
            for i, deployment in enumerate(provider.deployments):
                await self._check_upstream(
                    deployment.provider, tenant, f"provider.deployments[{i}].provider"
                )
        else:
            await self._check_upstream(provider, tenant, "provider")
        if isinstance(provider, PythonProvider):
            raise ProviderRefused(
                "python providers are declared in the config file only, never through the API",
                param="provider.type",
            )
        if isinstance(provider, ArtifactProvider) and is_stored(provider.artifact):
            path = await self.stored(provider.artifact).fetch(provider.artifact)
            if provider.type == "sklearn":
                from meshgate.models.providers.sklearn import check_trusted

                await asyncio.to_thread(check_trusted, path, provider.trusted)
        elif isinstance(provider, ArtifactProvider):
            path = self.artifact_path(provider.artifact, from_config=False)
            if not path.is_file():
                raise ProviderRefused(f"artifact {provider.artifact!r} not found")
            if provider.type == "sklearn":
                from meshgate.models.providers.sklearn import check_trusted

                await asyncio.to_thread(check_trusted, path, provider.trusted)

    async def _check_upstream(self, provider: Any, tenant: str, where: str) -> None:
        if getattr(provider, "api_key_env", None) is not None:
            raise ProviderRefused(
                f"{where}.api_key_env is accepted from the config file only; name a platform "
                f"credential granted to this tenant in {where}.credential",
                param=f"{where}.api_key_env",
            )
        credential = getattr(provider, "credential", None)
        if credential is not None:
            if self.credentials is None:
                raise ProviderRefused("no credentials are configured", param=f"{where}.credential")
            await self.credentials.check(tenant, credential)
        for name, value in provider:
            if isinstance(value, str) and value.startswith(("http://", "https://")):
                await self.egress.check_url(value, f"{where}.{name}")

    def stored(self, artifact: str) -> ArtifactStore:
        if self.artifacts is None:
            raise ProviderRefused(f"artifact {artifact!r}: no artifact store here")
        return self.artifacts

    def artifact_path(self, artifact: str, *, from_config: bool) -> Path:
        path = Path(artifact)
        if not path.is_absolute():
            path = self.artifact_root / path
        path = path.resolve()
        if not from_config and not path.is_relative_to(self.artifact_root):
            raise ProviderRefused(
                f"artifact {artifact!r} is outside the artifact directory {self.artifact_root}",
                param="provider.artifact",
            )
        return path

    def credential(self, tenant: str, provider: Any) -> UpstreamCredential | None:
        """What a provider authenticates with: a granted platform credential, or a variable
        that the config file itself named (``api_key_env``); nothing else from the process."""
        name = getattr(provider, "credential", None)
        if name is not None:
            if self.credentials is None:
                raise ProviderRefused("no credentials are configured")
            return self.credentials.ref(tenant, name)
        env = getattr(provider, "api_key_env", None)
        if env is not None:
            if env not in self.config_key_envs:
                raise ProviderRefused(f"api_key_env {env} is not named by the config file")
            return EnvCredential(env)
        return None

    def build(
        self, spec: VersionCreate, task: str, logging_policy: LoggingPolicy, tenant: str = ""
    ) -> Provider:
        p = spec.provider
        if p.type in CHAT_TYPES:
            return self.chat_provider(p, tenant)
        if isinstance(p, DeploymentsProvider):
            from meshgate.models.providers.deployments import DeploymentsChat

            return DeploymentsChat(p, lambda sub: self.chat_provider(sub, tenant), self.cooldowns)
        if isinstance(p, V2Provider):
            from meshgate.models.providers.v2 import V2Model

            return V2Model(p, self.transport)
        if isinstance(p, PythonProvider):
            if p.entrypoint not in self.config_entrypoints:
                raise ProviderRefused(f"python entry point {p.entrypoint} is not in the config")
            from meshgate.models.providers.python import PythonModel

            return PythonModel(p.entrypoint)
        if not isinstance(p, ArtifactProvider):
            raise ProviderRefused(f"provider type {p.type} is not supported")
        fetch = None
        if is_stored(p.artifact):
            store = self.stored(p.artifact)
            path = store.local_path(p.artifact)
            fetch = functools.partial(store.fetch, p.artifact)
        else:
            path = self.artifact_path(p.artifact, from_config=p.artifact in self.config_artifacts)
        if p.type == "onnx":
            from meshgate.models.providers.onnx import OnnxModel

            return OnnxModel(path, fetch=fetch)
        from meshgate.models.providers.sklearn import SklearnModel

        return SklearnModel(path, p.trusted, spec.signature, fetch=fetch)

    def chat_provider(self, p: Any, tenant: str) -> ChatProvider:
        """An OpenAI-compatible or vendor chat provider (alone or as one deployment)."""
        credential = self.credential(tenant, p)
        if isinstance(p, OpenAIProvider):
            from meshgate.models.providers.openai import OpenAIChat

            return OpenAIChat(p, self.transport, collect_text=True, credential=credential)
        from meshgate.models.providers.vendors import build_vendor

        return build_vendor(p, self.transport, credential)


def build_version(
    model: str,
    spec: VersionCreate,
    provider: Provider,
    on_breaker: Callable[[str, str, State], None],
) -> VersionRuntime:
    r = spec.resilience
    breaker = CircuitBreaker(
        failures=r.breaker.failures,
        reset_seconds=r.breaker.reset_seconds,
        on_change=lambda state: on_breaker(model, spec.version, state),
    )
    retry = Retry(r.retries, Backoff(base=r.backoff_seconds))
    return VersionRuntime(model, spec.version, spec, provider, breaker, retry, r.timeout_seconds)
