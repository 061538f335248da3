"""What the dataset, job and import routes answer, as the OpenAPI document shows it.

Each model describes exactly the dictionaries :mod:`meshgate.training.service` builds. They
forbid unknown members, so a key added on one side and not the other fails the route's own
tests instead of going undocumented; the routes answer with ``exclude_unset``, so a member
the service leaves out (a manifest before the build ends) stays out rather than turning
into ``null``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

Status = Literal["queued", "running", "succeeded", "failed"]
Number = int | float


class View(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatasetRequest(View):
    """The request as it was queued: times normalised, ``until`` filled in."""

    model: str
    versions: list[str] | None
    since: str | None
    until: str
    label: Literal["feedback"] | None = None


class BuildProgress(View):
    read: int = Field(description="Sequences of the log read so far.")
    of: int = Field(description="Sequences to read (the log's end when the build began).")


class TimeRange(View):
    first: str | None
    last: str | None


class Column(View):
    name: str
    type: str = Field(description="The Arrow type of the column.")


class DatasetQuery(View):
    """How the rows were chosen: enough to build the same dataset again."""

    model: str
    versions: list[str] | None
    since: str | None
    until: str
    events: list[str]
    log_sequence_end: int
    label: Literal["feedback"]
    feedback: str
    left_out: list[str]


class Expectation(View):
    """What inference checks a version trained on these rows against, for one feature."""

    missing: float = Field(description="Share of rows without the feature.")
    min: Number | None = None
    max: Number | None = None
    categories: list[str] | None = Field(
        None, description="A text feature's values; null when there were too many."
    )


class DatasetView(View):
    """A dataset build; the manifest's members are there once it succeeded."""

    id: str
    status: Status
    model: str
    request: DatasetRequest
    progress: BuildProgress | None
    error: str | None
    attempts: int
    created_by: str
    created_at: str
    finished_at: str | None
    rows: int | None = None
    time_range: TimeRange | None = None
    columns: list[Column] | None = Field(None, alias="schema")
    features: list[str] | None = None
    versions: list[str] | None = None
    sha256: str | None = None
    size: int | None = Field(None, description="Bytes of the Parquet file.")
    format: Literal["parquet"] | None = None
    query: DatasetQuery | None = None
    left_out: dict[str, int] | None = Field(
        None, description="Predictions left out, by reason (erased, unlabeled, ...)."
    )
    expectations: dict[str, Expectation] | None = None


class TrainingRequest(View):
    dataset: str
    params: dict[str, JsonValue]
    auto_rollout: bool


class TrainingProgress(View):
    stage: str


class DatasetRef(View):
    id: str
    sha256: str
    rows: int


class CodeVersion(View):
    trainer: str = Field(description="The trainer's entry point.")
    meshgate: str
    source_sha256: str | None = Field(description="sha256 of the trainer's source file.")


class Baseline(View):
    """What the production version scored on the holdout rows it served."""

    version: str | None
    rows: int
    accuracy: float | None = None
    f1: float | None = None
    mae: float | None = None
    rmse: float | None = None


class Holdout(View):
    share: float
    seed: int
    train: int
    holdout: int


class RolloutDecision(View):
    started: bool
    reason: str | None = None
    metric: str | None = None
    candidate: float | None = Field(None, description="The new version's metric.")
    production: float | None = Field(None, description="The production version's metric.")
    margin: float | None = None
    rollout: str | None = Field(None, description="The rollout started, when one was.")


class TrainingResult(View):
    version: str = Field(description="The version the job registered.")
    artifact: str
    metrics: dict[str, float | None]
    job: str
    dataset: DatasetRef
    code_version: CodeVersion
    parameters: dict[str, JsonValue]
    baseline: Baseline
    holdout: Holdout
    parent_version: str | None
    rollout: RolloutDecision


class TrainingJobView(View):
    id: str
    kind: Literal["training"]
    model: str
    status: Status
    request: TrainingRequest
    result: TrainingResult | None
    error: str | None
    progress: TrainingProgress | None
    attempts: int
    created_by: str
    created_at: str
    started_at: str | None
    finished_at: str | None


JobView = TrainingJobView | DatasetView
"""``GET /v1/jobs/{id}`` shows a dataset build as ``GET /v1/datasets/{id}`` does."""


class RegisteredVersion(View):
    """A version as the registry stored it."""

    version: str
    provider: dict[str, JsonValue]
    signature: dict[str, JsonValue]
    metadata: dict[str, JsonValue]
    resilience: dict[str, JsonValue]
    registered_by: str
    created_at: str
