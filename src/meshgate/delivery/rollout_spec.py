"""What a rollout is asked to do: ``POST /v1/registry/models/{name}/rollouts``."""

from __future__ import annotations

from itertools import pairwise
from typing import Literal

from pydantic import Field, field_validator

from meshgate.delivery.analysis import Bounds
from meshgate.strictjson import RequestBody

NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
VERSION = NAME
Mode = Literal["canary", "shadow_then_canary", "blue_green"]
State = Literal["pending", "progressing", "paused", "promoted", "rolled_back", "aborted"]
RUNNING: tuple[State, ...] = ("pending", "progressing", "paused")


class AnalysisBounds(RequestBody):
    """How much worse than its baseline a candidate may be; ``null`` turns a check off."""

    max_error_rate_delta: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Roll back once the candidate's error rate is surely above the "
        "baseline's by more than this (0: surely above at all).",
    )
    max_p95_ratio: float | None = Field(
        1.5, gt=1, le=100, description="Largest candidate/baseline ratio of p95 latency."
    )
    min_accuracy_delta: float | None = Field(
        -0.02,
        ge=-1,
        le=0,
        description="Smallest candidate minus baseline accuracy from feedback.",
    )
    max_drift_psi: float | None = Field(
        0.25,
        gt=0,
        le=10,
        description="Largest PSI of the candidate's inputs and outputs against the baseline's.",
    )
    min_agreement: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Smallest share of shadow answers equal to the baseline's (classifiers).",
    )
    alpha: float = Field(
        0.05,
        gt=0,
        le=0.2,
        description="Chance, over every look of the rollout, of rolling back a candidate as "
        "good as its baseline.",
    )

    def bounds(self) -> Bounds:
        return Bounds(**self.model_dump())


class RolloutCreate(RequestBody):
    candidate: str = Field(pattern=VERSION, description="The version rolled out.")
    baseline: str = Field(pattern=VERSION, description="The version it is compared with.")
    mode: Mode = "canary"
    steps: list[int] = Field(
        default_factory=lambda: [5, 25, 50, 100],
        min_length=1,
        max_length=20,
        description="The candidate's share of traffic at each step, in percent, increasing; "
        "passing the last step promotes the candidate.",
    )
    interval_seconds: float = Field(
        60.0, ge=0.1, le=86_400, description="How often the analysis looks and decides."
    )
    min_requests: int = Field(
        500, ge=1, le=10_000_000, description="Calls the candidate serves at a step before "
        "it may advance (in shadow_then_canary, also the shadow calls before the first step).",
    )  # fmt: skip
    analysis: AnalysisBounds = Field(default_factory=AnalysisBounds)

    @field_validator("steps")
    @classmethod
    def _increasing(cls, steps: list[int]) -> list[int]:
        if any(not 1 <= s <= 100 for s in steps):
            raise ValueError("every step is a share between 1 and 100")
        if any(b <= a for a, b in pairwise(steps)):
            raise ValueError("steps must be strictly increasing")
        return steps
