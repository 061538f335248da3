"""The shapes of training in ``meshgate.yaml``: a model's trainer and the runner's settings.

Kept free of heavy imports: :mod:`meshgate.models.config` loads this module when settings are
read. A trainer is declared in the config file only; the API can name a dataset and
parameters, never code to run.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from meshgate.strictjson import RequestBody

HIGHER_IS_BETTER = {"accuracy": True, "f1": True, "auc": True, "mae": False, "rmse": False}
Metric = Literal["accuracy", "f1", "auc", "mae", "rmse"]


class PromotionRule(RequestBody):
    """When a trained version is good enough to roll out: its holdout ``metric`` beats the
    production version's on the same holdout rows by at least ``margin``."""

    metric: Metric = "accuracy"
    margin: float = Field(0.0, ge=0.0, le=1e6, description="Required improvement.")
    rollout: dict[str, Any] = Field(
        default_factory=dict,
        description="Fields of the rollout to start (mode, steps, interval_seconds, analysis); "
        "candidate and baseline are filled in.",
    )

    @field_validator("rollout")
    @classmethod
    def _valid_rollout(cls, value: dict[str, Any]) -> dict[str, Any]:
        """Checked when the config is read, not when a training finally needs it."""
        if named := sorted({"candidate", "baseline"} & set(value)):
            raise ValueError(f"{' and '.join(named)} are filled in by the training job")
        from meshgate.delivery.rollout_spec import RolloutCreate

        try:
            RolloutCreate.model_validate({**value, "candidate": "new", "baseline": "old"})
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValueError(f"rollout {where}: {first['msg']}") from None
        return value


class TrainerSpec(RequestBody):
    """``pkg.mod:fn`` called as ``fn(features, labels, params)``; returns a fitted
    scikit-learn estimator. The platform splits the holdout, evaluates and serializes."""

    entrypoint: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    format: Literal["skops", "onnx"] = Field("skops", description="Artifact format; never pickle.")
    holdout: float = Field(0.25, ge=0.05, le=0.5, description="Share of rows held out.")
    seed: int = Field(0, ge=0, description="Seed of the holdout split.")
    params: dict[str, Any] = Field(
        default_factory=dict, description="Default parameters; a request's params override them."
    )
    timeout_seconds: float = Field(600.0, gt=0, le=86_400, description="Wall-clock limit.")
    memory_mb: int = Field(2048, ge=256, le=1_048_576, description="Address-space limit.")
    validation: Literal["log", "warn", "block"] = Field(
        "log",
        description="What inference does with a call outside the expectations learned from "
        "the training data: log it (in the prediction event), warn (a response header too) "
        "or block it (422).",
    )
    promote: PromotionRule | None = Field(
        default_factory=PromotionRule,
        description="When a new version starts a rollout; null: never automatically.",
    )


class TrainingConfig(RequestBody):
    """The job runner (``training:`` in meshgate.yaml); one runs per cluster."""

    interval_seconds: float = Field(
        1.0, gt=0, le=60, description="How often the runner looks for queued jobs."
    )
    lease_seconds: float = Field(
        30.0, ge=2, le=3600, description="How long a silent runner keeps the jobs to itself."
    )
    max_attempts: int = Field(
        3, ge=1, le=20, description="Runs of one job before a runner that keeps stopping fails it."
    )
    max_import_bytes: int = Field(
        64 * 1024 * 1024,
        ge=1024,
        le=4 * 1024**3,
        description="Largest model archive POST /v1/registry/models/{name}/imports/mlflow "
        "takes (a larger one is a 413, counted as it streams in); every other route keeps "
        "max_body_bytes.",
    )
    row_group_rows: int = Field(
        10_000,
        ge=1,
        le=1_000_000,
        description="Rows per Parquet row group of a dataset: a build holds one group in memory.",
    )
