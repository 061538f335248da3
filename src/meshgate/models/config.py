"""The typed shapes of the model registry, shared by ``meshgate.yaml`` (``models:``) and the API.

Kept free of heavy imports: :mod:`meshgate.config` loads this module when settings are read.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from meshgate.context.model import InvalidContext
from meshgate.context.policy import MAX_PATHS, PATH_PATTERN, build
from meshgate.models.provider_specs import (
    AnthropicProvider,
    AzureOpenAIProvider,
    BedrockProvider,
    GeminiProvider,
    Modality,
)
from meshgate.strictjson import RequestBody
from meshgate.training.spec import TrainerSpec

NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
Task = Literal["chat", "embedding", "classification", "regression"]
Datatype = Literal[
    "BOOL", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64",
    "FP16", "FP32", "FP64", "BYTES",
]  # fmt: skip


class OpenAIProvider(RequestBody):
    """Any OpenAI-compatible upstream (OpenAI, vLLM, Ollama, LiteLLM, a mock)."""

    type: Literal["openai"]
    base_url: str = Field(pattern=r"^https?://", description="Base URL, e.g. http://host/v1.")
    model: str | None = Field(None, description="Upstream model name; default the caller's.")
    credential: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$",
        description="Name of a platform credential granted to the tenant (sent as the bearer).",
    )
    api_key_env: str | None = Field(
        None,
        pattern=r"^[A-Z_][A-Z0-9_]*$",
        description="Environment variable with the key; config file only (the API refuses it).",
    )
    modalities: list[Modality] | None = Field(
        None,
        description="Input kinds the model accepts (default any); an image part to a "
        "text-only model is a 400.",
    )


class V2Provider(RequestBody):
    """Any Open Inference Protocol (KServe V2) server."""

    type: Literal["v2"]
    url: str = Field(pattern=r"^https?://", description="Base URL of the V2 server.")
    model: str = Field(description="Model name on the V2 server.")
    version: str | None = Field(None, description="Model version on the V2 server.")


class ArtifactProvider(RequestBody):
    """A local ONNX graph or a skops file; never a pickle."""

    type: Literal["onnx", "sklearn"]
    artifact: str = Field(
        description="Path of the .onnx or .skops file, or sha256:<hex> of one in the artifact "
        "store (shared by every node)."
    )
    trusted: list[Annotated[str, Field(pattern=r"^(sklearn|numpy|scipy)\.[A-Za-z0-9_.]+$")]] = (
        Field(
            default_factory=list,
            description="skops types to trust beyond its defaults (scikit-learn, NumPy, SciPy).",
        )
    )


class PythonProvider(RequestBody):
    """A function ``pkg.mod:fn`` taking and returning named NumPy arrays (config file only)."""

    type: Literal["python"]
    entrypoint: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


ChatProviderSpec = Annotated[
    OpenAIProvider | AnthropicProvider | GeminiProvider | AzureOpenAIProvider | BedrockProvider,
    Field(discriminator="type"),
]


class Deployment(RequestBody):
    """One place a version is served from, with its own limits."""

    name: str = Field(pattern=NAME)
    provider: ChatProviderSpec
    weight: int = Field(1, ge=0, le=1000, description="Share under the weighted strategy.")
    rpm: int | None = Field(None, ge=1, description="Requests per minute it accepts.")
    tpm: int | None = Field(None, ge=1, description="Tokens per minute it accepts.")


class DeploymentsProvider(RequestBody):
    """Several deployments of one version, chosen per call by a routing strategy."""

    type: Literal["deployments"]
    deployments: list[Deployment] = Field(min_length=1, max_length=32)
    routing: Literal["weighted", "least_busy", "lowest_latency", "usage"] = "weighted"
    cooldown_seconds: float = Field(
        30.0, gt=0, le=3600, description="Rest after a 429 or 5xx before it is tried again."
    )

    @field_validator("deployments")
    @classmethod
    def _unique(cls, value: list[Deployment]) -> list[Deployment]:
        names = [d.name for d in value]
        if len(set(names)) != len(names):
            raise ValueError("deployment names must be unique")
        return value


ProviderSpec = Annotated[
    OpenAIProvider
    | AnthropicProvider
    | GeminiProvider
    | AzureOpenAIProvider
    | BedrockProvider
    | DeploymentsProvider
    | V2Provider
    | ArtifactProvider
    | PythonProvider,
    Field(discriminator="type"),
]


class TensorSpec(RequestBody):
    name: str = Field(min_length=1, max_length=128)
    datatype: Datatype
    shape: list[int] = Field(description="Dimensions; -1 for any size.")
    from_context: str | None = Field(
        None,
        description="Filled from this context path (e.g. attributes.age) when the caller "
        "does not send it; the model's context policy must allow the path.",
    )


class Signature(RequestBody):
    inputs: list[TensorSpec] = Field(default_factory=list)
    outputs: list[TensorSpec] = Field(default_factory=list)

    @field_validator("inputs", "outputs")
    @classmethod
    def _unique(cls, value: list[TensorSpec]) -> list[TensorSpec]:
        names = [t.name for t in value]
        if len(set(names)) != len(names):
            raise ValueError("tensor names must be unique")
        return value


class Breaker(RequestBody):
    failures: int = Field(
        5, ge=1, le=10_000, description="Consecutive failures that open the breaker."
    )
    reset_seconds: float = Field(30.0, gt=0, description="Open time before a trial call.")


class Resilience(RequestBody):
    """How one version's upstream is called; immutable with the version."""

    timeout_seconds: float = Field(30.0, gt=0, le=600)
    retries: int = Field(1, ge=0, le=5, description="Extra attempts on retryable failures.")
    backoff_seconds: float = Field(0.05, ge=0, le=10, description="First backoff; doubles.")
    breaker: Breaker = Field(default_factory=Breaker)


class VersionCreate(RequestBody):
    version: str = Field(pattern=NAME)
    provider: ProviderSpec
    signature: Signature = Field(default_factory=Signature)
    metadata: dict[str, Any] = Field(default_factory=dict)
    resilience: Resilience = Field(default_factory=Resilience)


class ContextPolicy(RequestBody):
    allow: list[Annotated[str, Field(json_schema_extra={"pattern": PATH_PATTERN})]] = Field(
        default_factory=list, max_length=MAX_PATHS, description="Context paths the model sees."
    )

    @field_validator("allow")
    @classmethod
    def _paths(cls, allow: list[str]) -> list[str]:
        # The grammar of PUT /v1/context/policies: a path refused there is refused here, not
        # at the model's first call.
        try:
            build(allow, history_limit=1)
        except InvalidContext as exc:
            raise ValueError(exc.detail) from None
        return allow


class LoggingPolicy(RequestBody):
    """What a prediction event keeps of the inputs and outputs."""

    inputs: Literal["full", "hash", "none"] = "hash"
    outputs: Literal["full", "none"] = "full"


class ModelCreate(RequestBody):
    name: str = Field(pattern=NAME)
    task: Task = "chat"
    description: str = Field("", max_length=2000)
    intended_purpose: str = Field("", max_length=2000)
    risk_level: Literal["minimal", "limited", "high"] = "minimal"
    context_policy: ContextPolicy = Field(default_factory=ContextPolicy)
    logging: LoggingPolicy | None = Field(
        None, description="Default: inputs hashed for chat and embeddings, kept for tabular."
    )


class TrafficPolicy(RequestBody):
    split: dict[str, Annotated[int, Field(ge=0, le=100)]] = Field(min_length=1)
    shadow: list[str] = Field(default_factory=list)
    sticky: Literal["user", "session", "none"] = "user"
    fallback: list[str] = Field(default_factory=list)

    @field_validator("split")
    @classmethod
    def _weights(cls, split: dict[str, int]) -> dict[str, int]:
        total = sum(split.values())
        if total != 100:
            raise ValueError(f"split weights must sum to 100, not {total}")
        return split

    def versions(self) -> set[str]:
        return set(self.split) | set(self.shadow) | set(self.fallback)


class AliasSet(RequestBody):
    version: str = Field(pattern=NAME)


class ModelDeclaration(ModelCreate):
    """A model in ``meshgate.yaml``: the registry entry, its versions, aliases and traffic."""

    tenant: str = Field("default", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    versions: list[VersionCreate] = Field(default_factory=list)
    aliases: dict[str, str] = Field(default_factory=dict)
    traffic: TrafficPolicy | None = None
    trainer: TrainerSpec | None = Field(
        None, description="How POST .../train trains a new version (config file only)."
    )

    @model_validator(mode="after")
    def _known_versions(self) -> ModelDeclaration:
        known = {v.version for v in self.versions}
        named = set(self.aliases.values()) | (self.traffic.versions() if self.traffic else set())
        if missing := sorted(named - known):
            raise ValueError(f"model {self.name}: versions not declared: {', '.join(missing)}")
        return self
