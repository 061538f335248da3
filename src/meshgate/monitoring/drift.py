"""Drift of one input feature: its current window against its reference window.

Numeric features get the Population Stability Index (on the reference's quantile bins) and
the two-sample Kolmogorov-Smirnov test; categorical ones get chi-squared (on the 2 x k table of
both windows, so a category new in the current window counts instead of dividing by zero) and
the Jensen-Shannon distance. The configured test of each kind decides ``drifted``; the others
are reported beside it. CPU work: call from a worker thread, not the event loop.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon as js_distance

from meshgate.monitoring.config import DriftConfig

PSI_FLOOR = 1e-4
"""Share given to an empty bin, so the logarithm stays finite (Evidently's choice too)."""


def is_numeric(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
    if len(edges) < 2:
        # A constant reference: any value elsewhere is a new bin of its own.
        same = np.mean(current == edges[0])
        ref_p = np.array([1.0, PSI_FLOOR])
        cur_p = np.clip(np.array([same, 1 - same]), PSI_FLOOR, None)
        return float(np.sum((cur_p - ref_p) * np.log(cur_p / ref_p)))
    edges[0], edges[-1] = -np.inf, np.inf
    ref_p = np.clip(np.histogram(reference, edges)[0] / len(reference), PSI_FLOOR, None)
    cur_p = np.clip(np.histogram(current, edges)[0] / len(current), PSI_FLOOR, None)
    return float(np.sum((cur_p - ref_p) * np.log(cur_p / ref_p)))


def numeric_drift(
    reference: Sequence[float], current: Sequence[float], cfg: DriftConfig
) -> dict[str, Any]:
    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    ks = stats.ks_2samp(ref, cur)
    value = psi(ref, cur, cfg.psi_bins)
    ks_p = float(ks.pvalue)
    drifted = ks_p < cfg.ks_p_value if cfg.numeric_test == "ks" else value >= cfg.psi_threshold
    return {
        "kind": "numeric",
        "test": cfg.numeric_test,
        "drifted": bool(drifted),
        "psi": round(value, 6),
        "ks_statistic": round(float(ks.statistic), 6),
        "ks_p_value": ks_p,
        "reference_mean": float(ref.mean()),
        "current_mean": float(cur.mean()),
    }


def categorical_drift(
    reference: Sequence[Any], current: Sequence[Any], cfg: DriftConfig
) -> dict[str, Any]:
    ref = [str(v) for v in reference]
    cur = [str(v) for v in current]
    categories = sorted(set(ref) | set(cur))
    index = {c: i for i, c in enumerate(categories)}
    ref_counts = np.bincount([index[v] for v in ref], minlength=len(categories))
    cur_counts = np.bincount([index[v] for v in cur], minlength=len(categories))
    if len(categories) < 2:
        chi2, p_value = 0.0, 1.0
    else:
        result = stats.chi2_contingency(np.vstack([ref_counts, cur_counts]))
        chi2, p_value = float(result.statistic), float(result.pvalue)
    distance = float(js_distance(ref_counts / len(ref), cur_counts / len(cur), base=2))
    if cfg.categorical_test == "chisquare":
        drifted = p_value < cfg.chisquare_p_value
    else:
        drifted = distance >= cfg.jensenshannon_threshold
    return {
        "kind": "categorical",
        "test": cfg.categorical_test,
        "drifted": bool(drifted),
        "chisquare": round(chi2, 6),
        "chisquare_p_value": p_value,
        "jensenshannon": round(distance, 6),
    }


def feature_drift(
    reference: Sequence[Any], current: Sequence[Any], cfg: DriftConfig
) -> dict[str, Any]:
    """Drift of one feature, or a ``pending`` note while either window is too small."""
    base = {"reference_size": len(reference), "current_size": len(current)}
    if len(reference) < cfg.min_samples or len(current) < cfg.min_samples:
        return {**base, "drifted": False, "pending": f"needs {cfg.min_samples} values in each"}
    numeric = all(is_numeric(v) for v in reference) and all(is_numeric(v) for v in current)
    if numeric:
        return {**base, **numeric_drift(reference, current, cfg)}
    return {**base, **categorical_drift(reference, current, cfg)}


def model_drift(
    windows: Mapping[str, tuple[Sequence[Any], Sequence[Any]]], cfg: DriftConfig
) -> dict[str, Any]:
    """Every feature's drift and whether the share of drifted ones reaches ``drift_share``."""
    features = {name: feature_drift(ref, cur, cfg) for name, (ref, cur) in windows.items()}
    tested = [f for f in features.values() if "pending" not in f]
    share = sum(f["drifted"] for f in tested) / len(tested) if tested else 0.0
    return {
        "drifted": bool(tested) and share >= cfg.drift_share,
        "share": round(share, 4),
        "threshold": cfg.drift_share,
        "features": features,
    }
