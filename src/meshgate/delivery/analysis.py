"""The analysis of one rollout: candidate against baseline, on what each served since the
rollout started, with the sequential tests of :mod:`meshgate.delivery.sequential`.

One test per configured check (error rate, p95 latency, accuracy from feedback, shadow
agreement) shares the rollout's ``alpha`` equally, so the chance that a candidate as good as
its baseline is ever rolled back, over every look of the whole rollout, is at most ``alpha``.
Drift (PSI of the candidate's inputs and outputs against the baseline's) is a threshold, as
PSI is a distance and not a test; it is only read once both sides have enough values.

Pure: the controller feeds it what it read from the event log, the calibration test feeds
it simulated samples.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from meshgate.delivery.sequential import (
    compare_proportions,
    compare_quantiles,
    proportion_bounds,
)

MIN_SAMPLES = 30
"""Below this many calls on either side, no test is read (their normal approximations
need a few samples to mean anything)."""
MIN_FEEDBACK = 20
MIN_DRIFT_VALUES = 100
MAX_VALUES = 50_000
"""Latency samples and feature values kept per side; beyond it, the oldest half is dropped."""
PSI_FLOOR = 1e-4
Decision = Literal["advance", "hold", "rollback"]


@dataclass(frozen=True, slots=True)
class Bounds:
    """What the candidate may not be worse by (``None``: that check is off)."""

    max_error_rate_delta: float = 0.0
    max_p95_ratio: float | None = 1.5
    min_accuracy_delta: float | None = -0.02
    max_drift_psi: float | None = 0.25
    min_agreement: float | None = None
    alpha: float = 0.05

    def tests(self) -> int:
        """How many sequential tests share ``alpha``."""
        return 1 + sum(
            b is not None for b in (self.max_p95_ratio, self.min_accuracy_delta, self.min_agreement)
        )


@dataclass
class Arm:
    """What one version did in the rollout's window: its own calls (a call the candidate
    failed counts against it even when a fallback answered), feedback, agreement, values."""

    requests: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    feedback: int = 0
    correct: float = 0.0
    compared: int = 0
    """Shadow calls whose answer could be compared with the primary's."""
    agreed: int = 0
    inputs: dict[str, list[Any]] = field(default_factory=dict)
    outputs: list[Any] = field(default_factory=list)
    _sorted: bool = field(default=True, repr=False)

    def call(self, *, error: bool, latency_ms: float | None) -> None:
        self.requests += 1
        if error:
            self.errors += 1
        elif latency_ms is not None:
            self.latencies_ms.append(latency_ms)
            self._sorted = False

    def calls(self, requests: int, errors: int, latencies_ms: Iterable[float]) -> None:
        """Many calls at once: ``latencies_ms`` of the ones that did not fail."""
        self.requests += requests
        self.errors += errors
        self.latencies_ms.extend(latencies_ms)
        self._sorted = False

    def ordered_latencies(self) -> list[float]:
        """The latencies, sorted (kept sorted between looks: sorting again is one merge).

        Past ``MAX_VALUES`` every other one is dropped, which keeps their distribution."""
        if not self._sorted:
            self.latencies_ms.sort()
            if len(self.latencies_ms) > MAX_VALUES:
                self.latencies_ms = self.latencies_ms[::2]
            self._sorted = True
        return self.latencies_ms

    def summary(self) -> dict[str, Any]:
        ordered = self.ordered_latencies()
        return {
            "requests": self.requests,
            "errors": self.errors,
            "error_rate": round(self.errors / self.requests, 6) if self.requests else None,
            "p95_ms": round(ordered[math.ceil(0.95 * len(ordered)) - 1], 3) if ordered else None,
            "feedback": self.feedback,
            "accuracy": round(self.correct / self.feedback, 6) if self.feedback else None,
            **(
                {"agreement": round(self.agreed / self.compared, 6), "compared": self.compared}
                if self.compared
                else {}
            ),
        }


def keep_value(values: list[Any], value: Any) -> None:
    """Append a feature or output value; past ``MAX_VALUES`` the oldest half goes."""
    values.append(value)
    if len(values) > MAX_VALUES:
        del values[: MAX_VALUES // 2]


@dataclass(frozen=True, slots=True)
class Verdict:
    worse: tuple[str, ...]
    """The checks the candidate failed; empty when none."""
    figures: dict[str, Any]


def analyse(candidate: Arm, baseline: Arm, bounds: Bounds) -> Verdict:
    alpha = bounds.alpha / bounds.tests()
    worse: list[str] = []
    checks: dict[str, Any] = {}
    enough = candidate.requests >= MIN_SAMPLES and baseline.requests >= MIN_SAMPLES

    if enough:
        errors = compare_proportions(
            candidate.errors, candidate.requests, baseline.errors, baseline.requests, alpha=alpha
        )
        failed = errors.difference.lower > bounds.max_error_rate_delta
        checks["error_rate"] = {
            **errors.as_dict(),
            "max_delta": bounds.max_error_rate_delta,
            "worse": failed,
        }
        if failed:
            worse.append("error_rate")

    if (
        bounds.max_p95_ratio is not None
        and len(candidate.latencies_ms) >= MIN_SAMPLES
        and len(baseline.latencies_ms) >= MIN_SAMPLES
    ):
        latency = compare_quantiles(
            candidate.ordered_latencies(),
            baseline.ordered_latencies(),
            q=0.95,
            ratio=bounds.max_p95_ratio,
            alpha=alpha,
            presorted=True,
        )
        checks["p95_latency"] = latency.as_dict()
        if latency.worse:
            worse.append("p95_latency")

    if (
        bounds.min_accuracy_delta is not None
        and candidate.feedback >= MIN_FEEDBACK
        and baseline.feedback >= MIN_FEEDBACK
    ):
        accuracy = compare_proportions(
            candidate.correct, candidate.feedback, baseline.correct, baseline.feedback, alpha=alpha
        )
        failed = accuracy.difference.upper < bounds.min_accuracy_delta
        checks["accuracy"] = {
            **accuracy.as_dict(),
            "min_delta": bounds.min_accuracy_delta,
            "worse": failed,
        }
        if failed:
            worse.append("accuracy")

    if bounds.min_agreement is not None and candidate.compared >= MIN_FEEDBACK:
        agreement = proportion_bounds(candidate.agreed, candidate.compared, alpha=alpha)
        failed = agreement.upper < bounds.min_agreement
        checks["agreement"] = {
            **agreement.as_dict(),
            "min": bounds.min_agreement,
            "worse": failed,
        }
        if failed:
            worse.append("agreement")

    if bounds.max_drift_psi is not None:
        drift = drift_of(candidate, baseline)
        if drift:
            top = max(drift.values())
            failed = top > bounds.max_drift_psi
            checks["drift"] = {"psi": drift, "max_psi": bounds.max_drift_psi, "worse": failed}
            if failed:
                worse.append("drift")

    figures = {
        "candidate": candidate.summary(),
        "baseline": baseline.summary(),
        "alpha_per_test": round(alpha, 6),
        "checks": checks,
    }
    return Verdict(tuple(worse), figures)


def decide(verdict: Verdict, step_requests: int, min_requests: int) -> Decision:
    """Roll back on a failed check; advance once the step has its samples; else hold."""
    if verdict.worse:
        return "rollback"
    if step_requests >= min_requests and "error_rate" in verdict.figures["checks"]:
        return "advance"
    return "hold"


# --- drift -------------------------------------------------------------------------------


def drift_of(candidate: Arm, baseline: Arm) -> dict[str, float]:
    """PSI per input feature and of the outputs, where both sides have enough values."""
    pairs = [(f"inputs.{n}", v, baseline.inputs.get(n)) for n, v in candidate.inputs.items()]
    pairs.append(("outputs", candidate.outputs, baseline.outputs))
    found: dict[str, float] = {}
    for name, cur, ref in pairs:
        if ref is None or len(cur) < MIN_DRIFT_VALUES or len(ref) < MIN_DRIFT_VALUES:
            continue
        found[name] = round(psi(ref, cur), 6)
    return found


def psi(reference: list[Any], current: list[Any], bins: int = 10) -> float:
    """Population Stability Index: numbers on the reference's quantile bins, anything else
    by category."""
    if all(_number(v) for v in reference) and all(_number(v) for v in current):
        import numpy as np

        from meshgate.monitoring.drift import psi as numeric_psi  # numpy, only when needed

        return numeric_psi(np.asarray(reference, float), np.asarray(current, float), bins)
    ref, cur = Counter(map(str, reference)), Counter(map(str, current))
    total = 0.0
    for category in ref.keys() | cur.keys():
        r = max(ref[category] / len(reference), PSI_FLOOR)
        c = max(cur[category] / len(current), PSI_FLOOR)
        total += (c - r) * math.log(c / r)
    return total


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
