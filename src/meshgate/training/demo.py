"""The demo classifier's trainer (declared by the demo iris model): a scikit-learn pipeline.

Called in the training process as ``train_iris(features, labels, params)``; the platform
splits the holdout, evaluates and writes the artifact.
"""

from __future__ import annotations

from typing import Any


def train_iris(features: Any, labels: Any, params: dict[str, Any]) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    c = float(params.get("C", 1.0))
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=1000)).fit(
        features, labels
    )
