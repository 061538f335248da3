"""Monitoring of the demo classifier served through the real inference and feedback routes."""

from __future__ import annotations

from collections.abc import Callable

from meshgate.config import Settings
from tests.conftest import app_client
from tests.monitoring.helpers import report_when

FLOWER = [5.1, 3.5, 1.4, 0.2]


async def test_served_predictions_and_feedback_reach_the_model_report(
    make_settings: Callable[..., Settings],
) -> None:
    async with app_client(make_settings(demo=True)) as client:
        served = []
        for user in range(6):
            row = [v + user / 10 for v in FLOWER]
            body = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": row}]}
            answer = await client.post(
                "/v2/models/iris/infer", json=body, headers={"x-user-id": f"user-{user}"}
            )
            assert answer.status_code == 200, answer.text
            label = answer.json()["outputs"][0]["data"][0]
            served.append(
                (answer.headers["x-prediction-id"], answer.headers["x-model-version"], label)
            )
        prediction_id, version, label = served[0]
        given = await client.post(
            f"/v1/predictions/{prediction_id}/feedback", json={"label": label}
        )
        assert given.status_code in (200, 201, 202), given.text

        report = await report_when(
            client,
            "iris",
            lambda r: (
                sum(v["requests"] for v in r["versions"]) == 6
                and any(v["accuracy"]["feedback"] for v in r["versions"])
            ),
        )
    versions = {v["version"]: v for v in report["versions"]}
    assert versions[version]["accuracy"]["value"] == 1.0
    for row in versions.values():
        assert row["errors"] == 0 and row["latency_ms"]["p50"] is not None
        assert set(row["drift"]["features"]) == {"input[0]", "input[1]", "input[2]", "input[3]"}
