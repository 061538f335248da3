"""Sequential tests that stay valid when they are looked at again and again.

A rollout compares its candidate with its baseline at every interval, as long as it runs.
A fixed-sample test read that often rejects a true null far more often than its level says;
the tests here are built on nonnegative supermartingales (Ville's inequality), so the chance
that they *ever* reject a true null, over every look, stays below ``alpha``.

- Two proportions (error rates, accuracy from feedback, agreement): the mixture sequential
  probability ratio test (mSPRT) with a normal mixture over the difference, as in Johari,
  Pekelis and Walsh, "Always valid inference" (2017). Its confidence sequence is the set of
  differences the mSPRT does not reject. Counts are Agresti-Caffo adjusted (one success and
  one failure added per arm), which keeps small counts from giving a zero variance.
- Quantiles (latency p95): a confidence sequence from the ranks alone (Howard and Ramdas,
  "Sequential estimation of quantiles", 2022): the number of samples below the true quantile
  is a running binomial count, and a beta-binomial mixture martingale bounds it at every look
  at once. Comparing two versions' bounds is a rank comparison, free of any shape assumption.

Pure functions of counts and samples; the rollout controller and the calibration tests use
the same code.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

DEFAULT_TAU = 0.03
"""Scale of the normal mixture over a difference of proportions: the test is most sensitive
to differences of about this size (a few points of error rate or accuracy)."""
DEFAULT_CONCENTRATION = 20.0
"""Prior weight of the beta mixture of the quantile bound (in pseudo-samples)."""


@dataclass(frozen=True, slots=True)
class Interval:
    """A confidence sequence's interval at this look, with the point estimate."""

    estimate: float
    lower: float
    upper: float

    def as_dict(self, digits: int = 6) -> dict[str, float]:
        return {
            "estimate": round(self.estimate, digits),
            "lower": round(self.lower, digits),
            "upper": round(self.upper, digits),
        }


def mixture_radius(variance: float, alpha: float, tau: float = DEFAULT_TAU) -> float:
    """Half-width of the normal-mixture confidence sequence for a mean whose estimator has
    ``variance``: the differences the mSPRT with mixing variance ``tau**2`` does not reject.

    The mixture likelihood ratio against ``theta`` is
    ``sqrt(V / (V + t2)) * exp(t2 * (est - theta)**2 / (2 * V * (V + t2)))``; it stays below
    ``1 / alpha`` exactly inside ``est +/- radius``."""
    if not 0 < alpha < 1:
        raise ValueError("alpha is between 0 and 1")
    if variance <= 0:
        return 0.0
    tau2 = tau * tau
    return math.sqrt(
        variance
        * (variance + tau2)
        / tau2
        * (2 * math.log(1 / alpha) + math.log((variance + tau2) / variance))
    )


def msprt_p_value(estimate: float, variance: float, null: float, tau: float = DEFAULT_TAU) -> float:
    """The always-valid p-value of one look: ``1 / Lambda`` against ``difference == null``,
    capped at 1. (Its running minimum over the looks is the always-valid p-value.)"""
    if variance <= 0:
        return 1.0 if estimate == null else 0.0
    tau2 = tau * tau
    log_ratio = 0.5 * math.log(variance / (variance + tau2)) + tau2 * (estimate - null) ** 2 / (
        2 * variance * (variance + tau2)
    )
    return min(1.0, math.exp(-log_ratio)) if log_ratio < 700 else 0.0


@dataclass(frozen=True, slots=True)
class ProportionComparison:
    """candidate minus baseline, of two proportions (or means of values in [0, 1])."""

    candidate: float
    baseline: float
    difference: Interval
    p_value: float
    """The look's always-valid p-value against 'no difference'."""

    def as_dict(self) -> dict[str, float | dict[str, float]]:
        return {
            "candidate": round(self.candidate, 6),
            "baseline": round(self.baseline, 6),
            "difference": self.difference.as_dict(),
            "p_value": round(self.p_value, 6),
        }


def compare_proportions(
    candidate_hits: float,
    candidate_n: int,
    baseline_hits: float,
    baseline_n: int,
    *,
    alpha: float,
    tau: float = DEFAULT_TAU,
) -> ProportionComparison:
    """Confidence sequence of ``p_candidate - p_baseline`` at level ``alpha``.

    ``hits`` may be fractional (the sum of scores in [0, 1]): such a mean's variance is at
    most ``p(1 - p)``, the Bernoulli variance this uses, so the bound stays valid."""
    if candidate_n < 0 or baseline_n < 0:
        raise ValueError("counts are never negative")
    pc = (candidate_hits + 1) / (candidate_n + 2)
    pb = (baseline_hits + 1) / (baseline_n + 2)
    variance = pc * (1 - pc) / (candidate_n + 2) + pb * (1 - pb) / (baseline_n + 2)
    estimate = pc - pb
    radius = mixture_radius(variance, alpha, tau)
    return ProportionComparison(
        candidate=candidate_hits / candidate_n if candidate_n else 0.0,
        baseline=baseline_hits / baseline_n if baseline_n else 0.0,
        difference=Interval(estimate, estimate - radius, estimate + radius),
        p_value=msprt_p_value(estimate, variance, 0.0, tau),
    )


def proportion_bounds(hits: float, n: int, *, alpha: float, tau: float = DEFAULT_TAU) -> Interval:
    """Confidence sequence of one proportion (agreement of a shadow with its baseline)."""
    p = (hits + 1) / (n + 2)
    radius = mixture_radius(p * (1 - p) / (n + 2), alpha, tau)
    return Interval(hits / n if n else 0.0, max(0.0, p - radius), min(1.0, p + radius))


def _log_beta(a: float, b: float) -> float:
    return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)


def count_bounds(
    n: int, q: float, alpha: float, concentration: float = DEFAULT_CONCENTRATION
) -> tuple[int, int]:
    """The counts ``S`` of samples at or below the true ``q``-quantile that a running
    Binomial(n, q) count may have at look ``n``: ``[low, high]``, for every ``n`` at once
    with probability at least ``1 - alpha``.

    The martingale is the beta-binomial mixture of likelihood ratios,
    ``B(a + S, b + n - S) / B(a, b) / (q**S * (1 - q)**(n - S))`` with ``a = q * c`` and
    ``b = (1 - q) * c``; its logarithm is convex in ``S``, so the counts it keeps below
    ``log(1 / alpha)`` form one interval around ``n * q``."""
    if not 0 < q < 1:
        raise ValueError("q is between 0 and 1")
    a, b = q * concentration, (1 - q) * concentration
    base = _log_beta(a, b)
    limit = math.log(1 / alpha)
    log_q, log_r = math.log(q), math.log(1 - q)

    def inside(s: int) -> bool:
        log_m = _log_beta(a + s, b + n - s) - base - s * log_q - (n - s) * log_r
        return log_m < limit

    centre = min(n, max(0, round(n * q)))
    if not inside(centre):  # cannot happen for a proper prior; kept for safety
        return centre, centre

    def edge(lo_in: int, hi_out: int) -> int:
        # lo_in is inside, hi_out is outside (or one past the end): binary search the border.
        while abs(hi_out - lo_in) > 1:
            mid = (lo_in + hi_out) // 2
            if inside(mid):
                lo_in = mid
            else:
                hi_out = mid
        return lo_in

    low = 0 if inside(0) else edge(centre, -1)
    high = n if inside(n) else edge(centre, n + 1)
    return low, high


def quantile_bounds(
    samples: Sequence[float],
    q: float,
    alpha: float,
    *,
    concentration: float = DEFAULT_CONCENTRATION,
    presorted: bool = False,
) -> Interval:
    """Confidence sequence of the ``q``-quantile of the distribution ``samples`` come from.

    With ``S`` samples at or below the true quantile and ``S >= low``, the ``low``-th smallest
    sample is at or below it; with ``S <= high``, the ``high + 1``-th is above it. Open sides
    are infinite."""
    ordered = samples if presorted else sorted(samples)
    n = len(ordered)
    if n == 0:
        return Interval(math.nan, -math.inf, math.inf)
    low, high = count_bounds(n, q, alpha, concentration)
    lower = ordered[low - 1] if low >= 1 else -math.inf
    upper = ordered[high] if high < n else math.inf
    estimate = ordered[min(n - 1, max(0, math.ceil(q * n) - 1))]
    return Interval(estimate, lower, upper)


@dataclass(frozen=True, slots=True)
class QuantileRatio:
    """The ``q``-quantile of each version, with bounds, and whether the candidate's is
    surely above ``ratio`` times the baseline's."""

    candidate: Interval
    baseline: Interval
    ratio: float
    worse: bool

    def as_dict(self) -> dict[str, object]:
        def side(i: Interval) -> dict[str, float | None]:
            return {
                k: (None if math.isinf(v) or math.isnan(v) else round(v, 3))
                for k, v in (("estimate", i.estimate), ("lower", i.lower), ("upper", i.upper))
            }

        return {
            "candidate": side(self.candidate),
            "baseline": side(self.baseline),
            "max_ratio": self.ratio,
            "worse": self.worse,
        }


def compare_quantiles(
    candidate: Sequence[float],
    baseline: Sequence[float],
    *,
    q: float,
    ratio: float,
    alpha: float,
    presorted: bool = False,
) -> QuantileRatio:
    """Worse when the candidate's lower bound exceeds ``ratio`` times the baseline's upper
    bound. Each bound holds with ``alpha / 2``, so a candidate whose quantile is within the
    ratio is called worse, at any look, with probability at most ``alpha``."""
    c = quantile_bounds(candidate, q, alpha / 2, presorted=presorted)
    b = quantile_bounds(baseline, q, alpha / 2, presorted=presorted)
    worse = not math.isinf(c.lower) and not math.isinf(b.upper) and c.lower > ratio * b.upper
    return QuantileRatio(c, b, ratio, worse)
