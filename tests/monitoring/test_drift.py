"""Drift statistics on generated data, including the degenerate features real models send."""

from __future__ import annotations

import numpy as np
import pytest

from meshgate.monitoring.config import DriftConfig
from meshgate.monitoring.drift import feature_drift, model_drift, psi

CFG = DriftConfig(min_samples=50)


def test_psi_is_zero_on_the_same_sample_and_grows_with_the_shift() -> None:
    rng = np.random.default_rng(1)
    reference = rng.normal(0, 1, 2000)
    assert psi(reference, reference) == pytest.approx(0, abs=1e-9)
    small, large = psi(reference, reference + 0.2), psi(reference, reference + 1.0)
    assert 0 < small < 0.1 < large


def test_a_constant_feature_that_starts_moving_drifts_without_errors() -> None:
    reference = [3.0] * 100
    steady = feature_drift(reference, [3.0] * 100, DriftConfig(min_samples=50, numeric_test="psi"))
    assert steady["drifted"] is False and steady["psi"] == pytest.approx(0, abs=1e-9)
    moved = feature_drift(reference, [3.0] * 50 + [4.0] * 50, CFG)
    assert moved["drifted"] is True and np.isfinite(moved["psi"]) and moved["psi"] > 1


def test_categories_new_in_the_current_window_count_as_drift() -> None:
    reference = ["a"] * 60 + ["b"] * 40
    same = feature_drift(reference, ["b"] * 40 + ["a"] * 60, CFG)
    assert same["drifted"] is False and same["chisquare_p_value"] == pytest.approx(1)
    new = feature_drift(reference, ["a"] * 50 + ["c"] * 50, CFG)
    assert new["drifted"] is True and new["kind"] == "categorical"
    assert new["jensenshannon"] > 0.1
    single = feature_drift(["x"] * 100, ["x"] * 100, CFG)
    assert single["drifted"] is False


def test_mixed_types_are_categorical_and_small_windows_wait() -> None:
    mixed = feature_drift([1, "one"] * 50, [1, "one"] * 50, CFG)
    assert mixed["kind"] == "categorical" and mixed["drifted"] is False
    pending = feature_drift([1.0] * 100, [1.0] * 49, CFG)
    assert pending["drifted"] is False and "50" in pending["pending"]


def test_a_model_drifts_when_the_share_of_drifted_features_reaches_the_threshold() -> None:
    rng = np.random.default_rng(9)
    ref = rng.normal(0, 1, 300).tolist()
    moved = (rng.normal(0, 1, 300) + 1).tolist()
    still = rng.normal(0, 1, 300).tolist()
    windows = {"a": (ref, moved), "b": (ref, still), "c": (ref, still)}
    assert model_drift(windows, CFG)["drifted"] is False  # 1 of 3 < 0.5
    assert model_drift(windows, DriftConfig(min_samples=50, drift_share=0.3))["drifted"] is True
    assert model_drift({"a": (ref, moved[:10])}, CFG) == {
        "drifted": False,
        "share": 0.0,
        "threshold": 0.5,
        "features": {"a": feature_drift(ref, moved[:10], CFG)},
    }
