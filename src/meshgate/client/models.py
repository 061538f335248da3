"""Typed answers of the API. Unknown fields are kept (``extra="allow"``), so a newer server
does not break an older SDK; ``model_extra`` holds them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Resource(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=False)


class Principal(Resource):
    key_id: str
    tenant: str
    scopes: list[str]
    rpm: int | None = None
    tpm: int | None = None


class Key(Resource):
    id: str
    tenant: str
    prefix: str
    scopes: list[str]
    rpm: int | None = None
    tpm: int | None = None
    description: str | None = None
    created_at: str
    expires_at: str | None = None
    revoked_at: str | None = None


class KeyCreated(Resource):
    """A new key; ``key`` is the secret, shown this once."""

    id: str
    key: str
    tenant: str
    scopes: list[str]
    rpm: int | None = None
    tpm: int | None = None
    expires_at: str | None = None


class TrafficPolicy(Resource):
    split: dict[str, int]
    shadow: list[str] = Field(default_factory=list)
    sticky: str = "user"
    fallback: list[str] = Field(default_factory=list)


class ModelVersion(Resource):
    version: str
    provider: dict[str, Any]
    signature: dict[str, Any] | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    resilience: dict[str, Any] | None = None
    registered_by: str | None = None
    created_at: str | None = None


class Model(Resource):
    name: str
    task: str
    description: str = ""
    intended_purpose: str = ""
    risk_level: str = "minimal"
    context_policy: dict[str, Any] = Field(default_factory=dict)
    logging: dict[str, Any] | None = None
    created_by: str | None = None
    created_at: str | None = None
    versions: list[ModelVersion] = Field(default_factory=list)
    aliases: dict[str, str] = Field(default_factory=dict)
    traffic: TrafficPolicy | None = None


class ModelChange(Resource):
    """One entry of a model's history."""

    change: str
    details: dict[str, Any] = Field(default_factory=dict)
    actor: str | None = None
    at: str


class Rollout(Resource):
    """A rollout of a candidate version against a baseline, with its analysis figures."""

    id: str
    model: str
    candidate: str
    baseline: str
    mode: str
    steps: list[int]
    interval_seconds: float
    min_requests: int
    state: str
    phase: str
    step: int
    current_step: int | None = None
    weight: int
    traffic_applied: bool = True
    reason: str = ""
    figures: dict[str, Any] = Field(default_factory=dict)
    steps_analysis: list[dict[str, Any]] = Field(default_factory=list)
    created_at: str
    updated_at: str
    evaluated_at: str | None = None


class Tensor(Resource):
    name: str
    datatype: str
    shape: list[int]
    data: list[Any]


class InferenceResult(Resource):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    outputs: list[Tensor]
    prediction_id: str | None = None


class OpenAIModel(Resource):
    id: str
    object: str = "model"
    created: int | None = None
    owned_by: str | None = None


class Event(Resource):
    """A CloudEvent as the log holds it; ``sequence`` is its place in the log."""

    specversion: str = "1.0"
    id: str
    source: str
    type: str
    time: str | None = None
    subject: str | None = None
    sequence: int | None = None
    datacontenttype: str | None = None
    data: Any = None


class Subscription(Resource):
    id: str
    url: str
    types: list[str] | None = None


class AuditRecord(Resource):
    sequence: int
    time: str
    actor: str | None = None
    tenant: str | None = None
    action: str
    resource: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    model_version: str | None = None
    prev_hash: str
    hash: str


class AuditCheckpoint(Resource):
    sequence: int


class AuditVerification(Resource):
    ok: bool
    records: int
    head: str | None = None
    first_sequence: int | None = None
    last_sequence: int | None = None
    checkpoints: dict[str, Any] = Field(default_factory=dict)
    first_bad: dict[str, Any] | None = None


class PublicKey(Resource):
    algorithm: str
    key_id: str
    public_key: str
    pem: str
    trusted: list[Any] = Field(default_factory=list)


class UserContext(Resource):
    user_id: str
    attributes: dict[str, Any] = Field(default_factory=dict)
    preferences: dict[str, Any] = Field(default_factory=dict)
    updated_at: str
    version: int
    etag: str | None = None


class ErasureReceipt(Resource):
    user_id: str
    erased_at: str
    records: int
    event_keys_shredded: int


class UserExport(Resource):
    user_id: str
    exported_at: str
    profile: UserContext | None = None
    sessions: list[dict[str, Any]] = Field(default_factory=list)


class Session(Resource):
    session_id: str
    user_id: str
    channel: str
    ttl_seconds: int
    state: dict[str, Any] = Field(default_factory=dict)
    created_at: str
    expires_at: str
    handle: str | None = None
    interactions_count: int | None = None


class Interaction(Resource):
    role: str
    content: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    time: str


class ResolvedContext(Resource):
    """What a consumer's policy lets it see of a user (and session)."""

    consumer: str
    user_id: str | None = None
    session_id: str | None = None
    context: dict[str, Any]


class ContextPolicy(Resource):
    consumer: str
    allow: list[str]
    source: str


class Feedback(Resource):
    id: str
    prediction_id: str


class ModelMonitoring(Resource):
    model: str
    versions: list[dict[str, Any]]
    alerts: list[dict[str, Any]] = Field(default_factory=list)


class SloReport(Resource):
    window_seconds: int
    requests: int
    availability: dict[str, Any]
    error_rate: dict[str, Any]
    p95_latency_ms: dict[str, Any]
    error_budget_remaining: float | None = None
