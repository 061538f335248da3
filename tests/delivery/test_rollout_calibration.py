"""Calibration of the rollout analysis on simulated traffic, decided by the controller's code.

Each simulated rollout runs the steps 5, 25, 50, 100 % with 500 candidate calls per step
and 1,000 calls per interval; at every interval the analysis looks at everything since the
start and decides (advance, hold, roll back), as the controller does.
"""

from __future__ import annotations

import numpy as np

from meshgate.delivery.analysis import Arm, Bounds, analyse, decide

STEPS = (5, 25, 50, 100)
MIN_REQUESTS = 500
PER_INTERVAL = 1000
ROLLOUTS = 200


def simulate(seed: int, *, baseline_errors: float, candidate_errors: float) -> tuple[str, int]:
    """(outcome, step index) of one rollout; reaching the last step promotes."""
    rng = np.random.default_rng(seed)
    candidate, baseline = Arm(), Arm()
    step = step_requests = 0
    for _ in range(500):
        share = STEPS[step] / 100
        nc = int(rng.binomial(PER_INTERVAL, share))
        nb = PER_INTERVAL - nc
        ec, eb = int(rng.binomial(nc, candidate_errors)), int(rng.binomial(nb, baseline_errors))
        candidate.calls(nc, ec, rng.lognormal(4, 0.5, nc - ec).tolist())
        baseline.calls(nb, eb, rng.lognormal(4, 0.5, nb - eb).tolist())
        step_requests += nc
        decision = decide(analyse(candidate, baseline, Bounds()), step_requests, MIN_REQUESTS)
        if decision == "rollback":
            return "rolled_back", step
        if decision == "advance":
            step, step_requests = step + 1, 0
            if step == len(STEPS) - 1:
                return "promoted", step
    return "stuck", step


def test_a_candidate_like_its_baseline_is_rarely_rolled_back() -> None:
    outcomes = [
        simulate(seed, baseline_errors=0.02, candidate_errors=0.02) for seed in range(ROLLOUTS)
    ]
    rolled_back = sum(o == "rolled_back" for o, _ in outcomes) / ROLLOUTS
    print(f"A/A: {rolled_back:.1%} rolled back")
    assert rolled_back <= 0.05
    assert all(o != "stuck" for o, _ in outcomes), "every other rollout reaches the end"


def test_three_points_more_errors_are_rolled_back_before_the_last_step() -> None:
    outcomes = [
        simulate(10_000 + seed, baseline_errors=0.02, candidate_errors=0.05)
        for seed in range(ROLLOUTS)
    ]
    early = sum(o == "rolled_back" and step < len(STEPS) - 1 for o, step in outcomes) / ROLLOUTS
    by_step = [sum(o == "rolled_back" and s == i for o, s in outcomes) for i in range(len(STEPS))]
    print(f"3 points worse: {early:.1%} rolled back before the last step, per step {by_step}")
    assert early >= 0.95
