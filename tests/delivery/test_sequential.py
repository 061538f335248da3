"""The sequential tests: bounds that hold at every look at once, and that find real gaps."""

from __future__ import annotations

import math

import numpy as np
import pytest

from meshgate.delivery.sequential import (
    compare_proportions,
    compare_quantiles,
    count_bounds,
    mixture_radius,
    msprt_p_value,
    proportion_bounds,
    quantile_bounds,
)

LOOKS = range(50, 4001, 50)


def test_the_radius_shrinks_with_the_variance_and_grows_with_confidence() -> None:
    assert mixture_radius(0.0, 0.05) == 0.0
    wide, narrow = mixture_radius(1e-3, 0.05), mixture_radius(1e-5, 0.05)
    assert narrow < wide
    assert mixture_radius(1e-3, 0.01) > wide
    with pytest.raises(ValueError, match="alpha"):
        mixture_radius(1e-3, 1.5)


def test_the_p_value_of_a_look_falls_as_the_evidence_grows() -> None:
    assert msprt_p_value(0.0, 1e-4, 0.0) == 1.0
    assert msprt_p_value(0.05, 1e-4, 0.0) < 1e-3
    assert msprt_p_value(0.05, 1e-4, 0.0) < msprt_p_value(0.02, 1e-4, 0.0)


def test_two_equal_proportions_keep_zero_inside_and_a_gap_excludes_it() -> None:
    same = compare_proportions(20, 1000, 200, 10_000, alpha=0.05)
    assert same.difference.lower < 0 < same.difference.upper
    assert same.candidate == pytest.approx(0.02) and same.baseline == pytest.approx(0.02)
    gap = compare_proportions(60, 1000, 200, 10_000, alpha=0.05)
    assert gap.difference.lower > 0.01
    assert gap.p_value < 0.01
    # Scores in [0, 1] (fractional hits) are accepted as means.
    scored = compare_proportions(712.5, 1000, 7000.0, 10_000, alpha=0.05)
    assert scored.difference.lower < 0.0125 < scored.difference.upper


def ever_excludes_null(seed: int, *, naive: bool) -> bool:
    """One A/A stream of two 2 % error rates, looked at every 50 calls per side."""
    rng = np.random.default_rng(seed)
    a = rng.random(max(LOOKS)) < 0.02
    b = rng.random(max(LOOKS)) < 0.02
    ca, cb = np.cumsum(a), np.cumsum(b)
    for n in LOOKS:
        if naive:  # the fixed-sample 95 % interval, read at every look
            pa, pb = ca[n - 1] / n, cb[n - 1] / n
            se = math.sqrt(max(pa * (1 - pa) / n + pb * (1 - pb) / n, 1e-12))
            if abs(pa - pb) > 1.96 * se:
                return True
        else:
            found = compare_proportions(int(ca[n - 1]), n, int(cb[n - 1]), n, alpha=0.05)
            if not found.difference.lower <= 0 <= found.difference.upper:
                return True
    return False


def test_peeking_at_every_look_keeps_the_error_below_alpha() -> None:
    runs = 300
    always_valid = sum(ever_excludes_null(s, naive=False) for s in range(runs)) / runs
    naive = sum(ever_excludes_null(s, naive=True) for s in range(runs)) / runs
    assert always_valid <= 0.05, always_valid
    # The same looks with a fixed-sample interval reject far more often: the harness can tell.
    assert naive > 0.15, naive


def test_one_proportion_bounds_cover_it() -> None:
    bounds = proportion_bounds(90, 100, alpha=0.05)
    assert bounds.lower < 0.9 < bounds.upper
    assert bounds.lower >= 0.0 and bounds.upper <= 1.0
    assert proportion_bounds(0, 0, alpha=0.05).estimate == 0.0


def test_count_bounds_are_one_interval_around_the_expected_count() -> None:
    low, high = count_bounds(1000, 0.95, 0.05)
    assert low < 950 < high <= 1000
    tight_low, tight_high = count_bounds(1000, 0.95, 0.2)
    assert low <= tight_low and tight_high <= high
    assert count_bounds(0, 0.95, 0.05) == (0, 0)
    with pytest.raises(ValueError, match="q is"):
        count_bounds(10, 1.0, 0.05)


def test_quantile_bounds_cover_the_true_p95_at_every_look() -> None:
    true_p95 = -math.log(0.05) * 100  # exponential latencies with a mean of 100 ms
    missed = 0
    runs = 200
    for seed in range(runs):
        samples = np.random.default_rng(seed).exponential(100, 3000)
        for n in range(30, 3001, 60):
            ordered = np.sort(samples[:n]).tolist()
            bounds = quantile_bounds(ordered, 0.95, 0.05, presorted=True)
            if not bounds.lower <= true_p95 <= bounds.upper:
                missed += 1
                break
    assert missed / runs <= 0.05, missed / runs
    few = quantile_bounds([5.0, 6.0], 0.95, 0.05)
    assert math.isinf(few.upper)
    empty = quantile_bounds([], 0.95, 0.05)
    assert math.isnan(empty.estimate) and math.isinf(empty.lower)


def test_a_slower_candidate_is_worse_and_an_equal_one_is_not() -> None:
    rng = np.random.default_rng(7)
    baseline = rng.lognormal(4, 0.5, 3000).tolist()
    same = rng.lognormal(4, 0.5, 500).tolist()
    slow = (rng.lognormal(4, 0.5, 500) * 2).tolist()
    assert not compare_quantiles(same, baseline, q=0.95, ratio=1.2, alpha=0.05).worse
    found = compare_quantiles(slow, baseline, q=0.95, ratio=1.2, alpha=0.05)
    assert found.worse
    shown = found.as_dict()
    assert shown["worse"] is True and shown["candidate"]["lower"] > shown["baseline"]["upper"]
