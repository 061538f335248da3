"""Every ``meshgate.*`` event type with the class of its ``data``: the contract between domains.

A producer builds the payload class and appends ``TYPE.data(payload)``; a consumer matches
``record.type == TYPE.name`` and may read ``TYPE.parse(record.data)``. Fields a producer leaves
out are left out of the data too (``None`` is written only when it is given). A payload class
refuses fields it does not declare, so a test can hold each producer's real events to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def to_data(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


P = TypeVar("P", bound=Payload)


@dataclass(frozen=True)
class EventType(Generic[P]):
    name: str
    payload: type[P]

    def data(self, payload: P) -> dict[str, Any]:
        """What the event's ``data`` holds for ``payload``."""
        return payload.to_data()

    def parse(self, data: Any) -> P:
        """``data`` of a stored event as its payload class (a ValidationError when it is not)."""
        return self.payload.model_validate(data)


# --- models and predictions ---------------------------------------------------------------


class TokenUsage(Payload):
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    estimated: bool | None = None


class Cost(Payload):
    amount: float
    currency: str


PredictionStatus = Literal["ok", "error", "rejected", "blocked"]
"""ok; error: the upstream failed; rejected: it refused the request; blocked: a guardrail did."""


class PredictionMade(Payload):
    """One call to a model version. Inputs and outputs appear as the logging policy keeps them;
    the chat text of a known user is in the event's encrypted personal part instead."""

    prediction_id: str
    tenant: str
    key_id: str | None = None
    """The API key that made the call."""
    model: str
    version: str
    task: str
    status: PredictionStatus
    shadow: bool
    latency_ms: float
    trace_id: str | None
    context_fields: list[str]
    inputs_hash: str
    error: str | None = None
    fallback_from: str | None = None
    tokens: int | None = None
    session_id: str | None = None
    violations: list[str] | None = None
    """Input expectations of the version the call broke (data validation)."""
    inputs: Any = None
    outputs: Any = None
    stream: str | None = None
    """How a streamed answer ended (``ok`` when the client got all of it)."""
    cache: Literal["hit", "miss"] | None = None
    cache_similarity: float | None = None
    """A semantic cache hit: the cosine of the question with the stored one it was served."""
    shadow_of: str | None = None
    usage: TokenUsage | None = None
    cost: Cost | None = None


class PredictionFeedback(Payload):
    prediction_id: str
    label: Any = None
    score: float | None = None
    comment: str | None = None


class ModelRegistered(Payload):
    model: str
    actor: str
    name: str
    task: str
    description: str
    intended_purpose: str
    risk_level: str
    context_policy: dict[str, Any]
    logging: dict[str, Any] | None


class ModelVersionRegistered(Payload):
    model: str
    actor: str
    version: str
    provider: str
    url: str | None = None
    credential: str | None = None
    """A credential's name (or ``env:NAME``), never its value."""


class ModelTrafficChanged(Payload):
    model: str
    actor: str
    split: dict[str, int]
    shadow: list[str]
    sticky: str
    fallback: list[str]


PREDICTION_MADE = EventType("meshgate.prediction.made", PredictionMade)
PREDICTION_FEEDBACK = EventType("meshgate.prediction.feedback", PredictionFeedback)
MODEL_REGISTERED = EventType("meshgate.model.registered", ModelRegistered)
MODEL_VERSION_REGISTERED = EventType("meshgate.model.version.registered", ModelVersionRegistered)
MODEL_TRAFFIC_CHANGED = EventType("meshgate.model.traffic.changed", ModelTrafficChanged)


# --- monitoring ----------------------------------------------------------------------------


class AlertPayload(Payload):
    id: str
    rule: str
    tenant: str
    model: str
    version: str
    value: float
    threshold: float
    message: str
    fired_at: str
    resolved_at: str | None = None


ALERT_FIRED = EventType("meshgate.alert.fired", AlertPayload)
ALERT_RESOLVED = EventType("meshgate.alert.resolved", AlertPayload)

BreakerState = Literal["open", "half_open", "closed"]


class BreakerTransition(Payload):
    """A model version's circuit breaker moved in one process. Each process calling an
    upstream keeps its own breaker per version; monitoring folds every process's reports
    into the cluster's view."""

    tenant: str
    model: str
    version: str
    state: BreakerState
    node: str
    """The process whose breaker moved (unique across hosts, processes and restarts)."""
    at: str
    """When it moved (ISO 8601, UTC)."""
    reset_seconds: float
    """The breaker's open time before a trial call: an open report lapses after it."""
    stopped: bool | None = None
    """On a ``closed``: the process stopped, and its breaker (open or not) ended with it."""


BREAKER_OPENED = EventType("meshgate.breaker.opened", BreakerTransition)
BREAKER_HALF_OPENED = EventType("meshgate.breaker.half_opened", BreakerTransition)
BREAKER_CLOSED = EventType("meshgate.breaker.closed", BreakerTransition)
BREAKER_EVENTS: dict[BreakerState, EventType[BreakerTransition]] = {
    "open": BREAKER_OPENED,
    "half_open": BREAKER_HALF_OPENED,
    "closed": BREAKER_CLOSED,
}
"""The event type of each state a breaker moves to."""


# --- economics ---------------------------------------------------------------------------


class GuardrailTriggered(Payload):
    """A guardrail decision: counts of what matched, never the matched data."""

    model: str
    check: str
    action: str
    stage: Literal["input", "output"]
    counts: dict[str, int]
    key_id: str | None
    prediction_id: str


class BudgetThresholdReached(Payload):
    scope: str
    id: str
    period: str
    amount: float
    soft_level: float
    level: Literal["soft"]


GUARDRAIL_TRIGGERED = EventType("meshgate.guardrail.triggered", GuardrailTriggered)
BUDGET_THRESHOLD_REACHED = EventType("meshgate.budget.threshold_reached", BudgetThresholdReached)


# --- delivery ----------------------------------------------------------------------------


FlagAction = Literal["put", "changed", "deleted"]


class FlagChanged(Payload):
    key: str
    action: FlagAction
    version: int | None
    actor: str


FLAG_CHANGED = EventType("meshgate.flag.changed", FlagChanged)


class RolloutTransition(Payload):
    """A rollout moved: by its controller (with the analysis figures that decided it) or by
    hand (with the latest figures)."""

    id: str
    model: str
    candidate: str
    baseline: str
    mode: Literal["canary", "shadow_then_canary", "blue_green"]
    state: Literal["pending", "progressing", "paused", "promoted", "rolled_back", "aborted"]
    phase: Literal["shadow", "canary", "switched"]
    step: int
    weight: int
    reason: str
    actor: str
    figures: dict[str, Any]


ROLLOUT_STARTED = EventType("meshgate.rollout.started", RolloutTransition)
ROLLOUT_ADVANCED = EventType("meshgate.rollout.advanced", RolloutTransition)
ROLLOUT_PROMOTED = EventType("meshgate.rollout.promoted", RolloutTransition)
ROLLOUT_ROLLED_BACK = EventType("meshgate.rollout.rolled_back", RolloutTransition)
ROLLOUT_PAUSED = EventType("meshgate.rollout.paused", RolloutTransition)
ROLLOUT_RESUMED = EventType("meshgate.rollout.resumed", RolloutTransition)
ROLLOUT_ABORTED = EventType("meshgate.rollout.aborted", RolloutTransition)
ROLLOUT_EVENTS: dict[str, EventType[RolloutTransition]] = {
    t.name.removeprefix("meshgate.rollout."): t
    for t in (
        ROLLOUT_STARTED,
        ROLLOUT_ADVANCED,
        ROLLOUT_PROMOTED,
        ROLLOUT_ROLLED_BACK,
        ROLLOUT_PAUSED,
        ROLLOUT_RESUMED,
        ROLLOUT_ABORTED,
    )
}
"""Each rollout transition (``started``, ``rolled_back``...) with its event type."""


# --- context -----------------------------------------------------------------------------


class ContextUpdated(Payload):
    """A write to the Context Mesh. A user appears only by pseudonym (``user_ref``)."""

    what: Literal["profile", "session", "interactions", "session.state"]
    user_ref: str | None = None
    session_id: str | None = None
    version: int | None = None
    changed: list[str] | None = None
    """``attributes.<key>`` and ``preferences.<key>`` paths a profile patch touched."""
    count: int | None = None
    """Interactions appended."""


class ContextErased(Payload):
    user_ref: str
    records: int
    erased_at: str


CONTEXT_UPDATED = EventType("meshgate.context.updated", ContextUpdated)
CONTEXT_ERASED = EventType("meshgate.context.erased", ContextErased)


# --- datasets and training -------------------------------------------------------------------

JobKind = Literal["dataset", "training"]


class JobQueued(Payload):
    """A dataset build or a training run was queued (``request`` as the job keeps it)."""

    job: str
    kind: JobKind
    model: str
    request: dict[str, Any]


class JobSucceeded(Payload):
    """A dataset was built (``rows``, ``sha256``) or a version trained (``version``,
    ``metrics``, the ``dataset`` it learned from, its ``parent_version`` and ``rollout``)."""

    job: str
    kind: JobKind
    model: str
    rows: int | None = None
    sha256: str | None = None
    dataset: str | None = None
    version: str | None = None
    parent_version: str | None = None
    metrics: dict[str, float | None] | None = None
    rollout: dict[str, Any] | None = None


class JobFailed(Payload):
    job: str
    kind: JobKind
    model: str
    reason: str


TRAINING_QUEUED = EventType("meshgate.training.queued", JobQueued)
TRAINING_SUCCEEDED = EventType("meshgate.training.succeeded", JobSucceeded)
TRAINING_FAILED = EventType("meshgate.training.failed", JobFailed)


_TYPES: tuple[EventType[Any], ...] = (
    PREDICTION_MADE,
    PREDICTION_FEEDBACK,
    MODEL_REGISTERED,
    MODEL_VERSION_REGISTERED,
    MODEL_TRAFFIC_CHANGED,
    ALERT_FIRED,
    ALERT_RESOLVED,
    *BREAKER_EVENTS.values(),
    GUARDRAIL_TRIGGERED,
    BUDGET_THRESHOLD_REACHED,
    FLAG_CHANGED,
    *ROLLOUT_EVENTS.values(),
    CONTEXT_UPDATED,
    CONTEXT_ERASED,
    TRAINING_QUEUED,
    TRAINING_SUCCEEDED,
    TRAINING_FAILED,
)
CATALOGUE: dict[str, EventType[Any]] = {t.name: t for t in _TYPES}
"""Every ``meshgate.*`` event type by name."""
