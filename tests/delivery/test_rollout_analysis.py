"""The analysis of one look: which checks a candidate fails, and the decision it leads to."""

from __future__ import annotations

import numpy as np

from meshgate.delivery.analysis import Arm, Bounds, analyse, decide, drift_of, keep_value, psi


def arms(
    *, requests: int = 2000, errors: tuple[int, int] = (20, 20), slow: float = 1.0
) -> tuple[Arm, Arm]:
    rng = np.random.default_rng(3)
    candidate, baseline = Arm(), Arm()
    candidate.calls(requests, errors[0], (rng.lognormal(4, 0.3, requests) * slow).tolist())
    baseline.calls(requests * 4, errors[1] * 4, rng.lognormal(4, 0.3, requests * 4).tolist())
    return candidate, baseline


def test_a_healthy_candidate_advances_once_its_step_has_the_samples() -> None:
    candidate, baseline = arms()
    verdict = analyse(candidate, baseline, Bounds())
    assert verdict.worse == ()
    assert decide(verdict, step_requests=100, min_requests=500) == "hold"
    assert decide(verdict, step_requests=500, min_requests=500) == "advance"
    figures = verdict.figures
    assert figures["candidate"]["requests"] == 2000 and figures["baseline"]["errors"] == 80
    assert figures["checks"]["error_rate"]["worse"] is False
    assert figures["alpha_per_test"] == round(0.05 / 3, 6)


def test_too_few_calls_hold_without_any_test() -> None:
    candidate, baseline = Arm(), Arm()
    for _ in range(10):
        candidate.call(error=True, latency_ms=None)
        baseline.call(error=False, latency_ms=10.0)
    verdict = analyse(candidate, baseline, Bounds())
    assert verdict.worse == () and verdict.figures["checks"] == {}
    assert decide(verdict, step_requests=10, min_requests=5) == "hold"


def test_more_errors_roll_back_and_a_tolerance_allows_some() -> None:
    candidate, baseline = arms(errors=(100, 20))  # 5 % against 1 %
    assert analyse(candidate, baseline, Bounds()).worse == ("error_rate",)
    assert decide(analyse(candidate, baseline, Bounds()), 0, 500) == "rollback"
    tolerant = Bounds(max_error_rate_delta=0.06)
    assert analyse(candidate, baseline, tolerant).worse == ()


def test_a_slower_candidate_fails_the_latency_check() -> None:
    candidate, baseline = arms(slow=2.0)
    verdict = analyse(candidate, baseline, Bounds(max_p95_ratio=1.2))
    assert verdict.worse == ("p95_latency",)
    assert analyse(candidate, baseline, Bounds(max_p95_ratio=None)).worse == ()


def test_worse_accuracy_from_feedback_rolls_back() -> None:
    candidate, baseline = arms()
    candidate.feedback, candidate.correct = 300, 210.0  # 70 %
    baseline.feedback, baseline.correct = 1200, 1080.0  # 90 %
    verdict = analyse(candidate, baseline, Bounds())
    assert verdict.worse == ("accuracy",)
    assert verdict.figures["checks"]["accuracy"]["difference"]["upper"] < -0.02


def test_shadow_agreement_below_the_bound_rolls_back() -> None:
    candidate, baseline = arms()
    candidate.compared, candidate.agreed = 400, 240
    assert analyse(candidate, baseline, Bounds(min_agreement=0.9)).worse == ("agreement",)
    assert analyse(candidate, baseline, Bounds(min_agreement=0.5)).worse == ()


def test_drift_of_inputs_and_outputs_is_a_psi_threshold() -> None:
    rng = np.random.default_rng(5)
    candidate, baseline = arms()
    for value in rng.normal(0, 1, 500):
        keep_value(baseline.inputs.setdefault("age", []), float(value))
    for value in rng.normal(2, 1, 500):
        keep_value(candidate.inputs.setdefault("age", []), float(value))
    baseline.outputs = ["yes"] * 300 + ["no"] * 300
    candidate.outputs = ["yes"] * 300 + ["no"] * 300
    found = drift_of(candidate, baseline)
    assert found["inputs.age"] > 1.0 and found["outputs"] < 0.01
    assert analyse(candidate, baseline, Bounds()).worse == ("drift",)
    assert psi(["a"] * 100, ["a"] * 100) == 0.0


def test_a_rollback_gives_the_candidates_share_to_the_baseline_and_keeps_the_rest() -> None:
    from meshgate.delivery.rollout_service import back_to_baseline

    assert back_to_baseline({"1": 90, "2": 10}, "2", "1") == {"1": 100}
    assert back_to_baseline({"1": 70, "3": 20, "2": 10}, "2", "1") == {"1": 80, "3": 20}
    assert back_to_baseline({"3": 100}, "2", "1") == {"3": 100}
    assert back_to_baseline(None, "2", "1") == {"1": 100}
