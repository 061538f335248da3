"""GET /v1/monitoring/models/{name}: figures per version from prediction and feedback events."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest

from meshgate.config import ConfigError, Settings, load_settings
from tests.conftest import app_client
from tests.monitoring.helpers import (
    feedback,
    platform_of,
    predict,
    report_when,
    requests_at_least,
    version_of,
)


def tensors(x: np.ndarray, colour: list[str]) -> list[dict[str, Any]]:
    """Open Inference Protocol inputs: a [n, 2] matrix (two numeric features) and a label."""
    return [
        {"name": "x", "shape": [len(x), 2], "datatype": "FP64", "data": x.ravel().tolist()},
        {"name": "colour", "shape": [len(colour)], "datatype": "BYTES", "data": colour},
    ]


async def publish_batches(client: httpx.AsyncClient, version: str, shift: float, rng: Any) -> None:
    platform = platform_of(client)
    colours, reference_p = ["red", "green", "blue"], [0.5, 0.3, 0.2]
    # 500 reference rows in 10 events of 50, then 300 current rows, shifted or not.
    for i in range(16):
        current = i >= 10
        x = rng.normal(0, 1, size=(50, 2))
        p = reference_p
        if current and shift:
            x[:, 0] += shift  # only the first column moves
            p = [0.2, 0.3, 0.5]
        colour = list(rng.choice(colours, size=50, p=p))
        await predict(platform, "scorer", version, inputs=tensors(x, colour), latency_ms=3)


async def test_a_shifted_distribution_drifts_and_an_unshifted_one_does_not(
    client: httpx.AsyncClient,
) -> None:
    # Seeded: at p < 0.05 one unshifted feature in twenty is flagged by chance alone.
    rng = np.random.default_rng(2026)
    await publish_batches(client, "1", 0.0, rng)
    await publish_batches(client, "2", 0.8, rng)
    report = await report_when(
        client, "scorer", lambda r: all(v["requests"] == 16 for v in r["versions"])
    )
    assert [v["version"] for v in report["versions"]] == ["1", "2"]

    steady, shifted = version_of(report, "1")["drift"], version_of(report, "2")["drift"]
    assert set(steady["features"]) == {"x[0]", "x[1]", "colour"}
    assert steady["drifted"] is False and steady["share"] == 0
    for feature in steady["features"].values():
        assert feature["drifted"] is False
        assert (feature["reference_size"], feature["current_size"]) == (500, 300)
    assert steady["features"]["x[0]"]["psi"] < 0.1
    assert steady["features"]["x[0]"]["ks_p_value"] > 0.05

    assert shifted["drifted"] is True
    assert shifted["features"]["x[0]"]["drifted"] is True
    assert shifted["features"]["x[0]"]["ks_p_value"] < 0.001
    assert shifted["features"]["x[0]"]["psi"] > 0.2
    assert shifted["features"]["x[1]"]["drifted"] is False  # this column did not move
    colour = shifted["features"]["colour"]
    assert colour["kind"] == "categorical" and colour["drifted"] is True
    assert colour["chisquare_p_value"] < 0.001 and colour["jensenshannon"] > 0.1
    assert shifted["share"] == pytest.approx(2 / 3, abs=1e-3)


async def test_requests_error_rate_and_latency_percentiles_per_version(
    client: httpx.AsyncClient,
) -> None:
    platform = platform_of(client)
    # Latencies 1..100 ms on version 1, and 10 failed calls; version 2 serves three.
    await asyncio.gather(*(predict(platform, "chat", "1", latency_ms=ms) for ms in range(1, 101)))
    await asyncio.gather(*(predict(platform, "chat", "1", error="timeout") for _ in range(10)))
    await asyncio.gather(*(predict(platform, "chat", "2", latency_ms=50) for _ in range(3)))
    report = await report_when(
        client,
        "chat",
        lambda r: requests_at_least("1", 110)(r) and requests_at_least("2", 3)(r),
    )
    one, two = version_of(report, "1"), version_of(report, "2")
    assert one["requests"] == 110 and one["errors"] == 10
    assert one["error_rate"] == pytest.approx(10 / 110)
    assert one["latency_ms"]["p50"] == pytest.approx(50.5, abs=0.01)
    assert one["latency_ms"]["p95"] == pytest.approx(95.05, abs=0.01)
    assert one["latency_ms"]["p99"] == pytest.approx(99.01, abs=0.01)
    assert two["requests"] == 3 and two["errors"] == 0
    assert two["latency_ms"] == {"p50": 50.0, "p95": 50.0, "p99": 50.0}
    assert one["drift"] is None  # chat inputs are not features
    assert report["alerts"] == []


async def test_accuracy_comes_from_feedback_on_the_predictions_it_names(
    client: httpx.AsyncClient,
) -> None:
    platform = platform_of(client)
    made = [
        await predict(platform, "iris", "1", outputs=[{"name": "label", "data": ["setosa"]}])
        for _ in range(8)
    ]
    await report_when(client, "iris", requests_at_least("1", 8))
    truths = ["setosa"] * 6 + ["virginica"] * 2
    for prediction, truth in zip(made, truths, strict=True):
        await feedback(platform, prediction, label=truth)
    # Feedback naming an unknown prediction, or with neither label nor score, changes nothing.
    await platform.events.publish(  # type: ignore[union-attr]
        "meshgate.prediction.feedback",
        tenant="default",
        data={"prediction_id": "no-such-prediction", "label": "setosa"},
    )
    await feedback(platform, made[0], comment="no label")
    await feedback(platform, made[7], label="setosa")  # a second opinion does not count
    # Events are handled in order: once this prediction shows, every feedback above was seen.
    await predict(platform, "iris", "1")
    report = await report_when(client, "iris", requests_at_least("1", 9))
    accuracy = version_of(report, "1")["accuracy"]
    assert accuracy["feedback"] == 8
    assert accuracy["value"] == pytest.approx(0.75)


async def test_reports_are_partitioned_by_tenant_and_need_audit_read(
    client: httpx.AsyncClient,
) -> None:
    platform = platform_of(client)
    await predict(platform, "shared-name", "1", latency_ms=5)
    await asyncio.gather(
        *(predict(platform, "shared-name", "1", tenant="acme", latency_ms=9) for _ in range(3))
    )
    made = await client.post("/v1/admin/keys", json={"tenant": "acme", "scopes": ["audit:read"]})
    acme = {"Authorization": f"Bearer {made.json()['key']}"}
    theirs = await report_when(client, "shared-name", requests_at_least("1", 3), headers=acme)
    assert version_of(theirs, "1")["requests"] == 3
    ours = await report_when(client, "shared-name", requests_at_least("1", 1))
    assert version_of(ours, "1")["requests"] == 1

    other = await client.post("/v1/admin/keys", json={"tenant": "other", "scopes": ["audit:read"]})
    answer = await client.get(
        "/v1/monitoring/models/shared-name",
        headers={"Authorization": f"Bearer {other.json()['key']}"},
    )
    assert answer.status_code == 404
    assert "shared-name" in answer.json()["detail"]

    reader = await client.post("/v1/admin/keys", json={"tenant": "acme", "scopes": ["inference"]})
    denied = await client.get(
        "/v1/monitoring/models/shared-name",
        headers={"Authorization": f"Bearer {reader.json()['key']}"},
    )
    assert denied.status_code == 403 and "audit:read" in denied.json()["detail"]


async def test_malformed_events_are_ignored_without_harm(client: httpx.AsyncClient) -> None:
    platform = platform_of(client)
    for data in (None, "text", {"version": "1"}, {"model": "m"}, {"model": "", "version": "1"}):
        await platform.events.publish("meshgate.prediction.made", tenant="default", data=data)
    await predict(platform, "m", "1", latency_ms="slow", inputs={"a": {"nested": 1}, "b": [1, 2]})
    report = await report_when(client, "m", requests_at_least("1", 1))
    version = version_of(report, "1")
    assert version["requests"] == 1
    assert version["latency_ms"]["p50"] is None
    assert set(version["drift"]["features"]) == {"b"}


async def test_thresholds_are_configurable_and_bad_values_are_refused(
    make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(monitoring={"drift": {"min_samples": 10, "numeric_test": "psi"}})
    async with app_client(settings) as client:
        platform = platform_of(client)
        rng = np.random.default_rng(3)
        for shift in [0.0] * 10 + [0.5] * 2:
            values = (rng.normal(0, 1, 50) + shift).tolist()
            await predict(platform, "small", "1", inputs={"v": values})
        report = await report_when(client, "small", requests_at_least("1", 12))
    feature = version_of(report, "1")["drift"]["features"]["v"]
    assert feature["test"] == "psi" and feature["current_size"] == 100
    assert feature["drifted"] is (feature["psi"] >= 0.1)

    monkeypatch.setenv("MESHGATE_MONITORING__DRIFT__KS_P_VALUE", "2")
    with pytest.raises(ConfigError, match=r"monitoring\.drift\.ks_p_value"):
        load_settings()
    monkeypatch.setenv("MESHGATE_MONITORING__DRIFT__KS_P_VALUE", "0.01")
    monkeypatch.setenv("MESHGATE_MONITORING__DRIFT__NUMERIC_TEST", "wasserstein")
    with pytest.raises(ConfigError, match=r"monitoring\.drift\.numeric_test"):
        load_settings()


async def test_tabular_events_as_the_model_service_logs_them(client: httpx.AsyncClient) -> None:
    """Tensors by name as row matrices, outputs by name, a string status, an id of our own."""
    platform = platform_of(client)
    rng = np.random.default_rng(5)
    made = []
    for i in range(4):
        rows = rng.normal(5, 1, size=(3, 4)).round(2).tolist() if i < 3 else [[1.0, 2.0, 3.0, 4.0]]
        made.append(
            await platform.events.publish(
                "meshgate.prediction.made",
                tenant="default",
                subject="models/iris",
                id=f"pred_{i}",
                data={
                    "prediction_id": f"pred_{i}",
                    "model": "iris",
                    "version": "1",
                    "status": ["error", "rejected", "ok", "ok"][i],
                    "latency_ms": 2.5,
                    "inputs": {"input": rows},
                    "outputs": {"output_label": [i % 2], "output_probability": [[0.4, 0.6]]},
                },
            )
        )
    await feedback(platform, made[3], label=1)  # output_label of pred_3 is 1: right
    await feedback(platform, made[2], label="1")  # pred_2 answered 0: wrong
    report = await report_when(
        client, "iris", lambda r: version_of(r, "1")["accuracy"]["feedback"] == 2
    )
    version = version_of(report, "1")
    # An upstream failure is an error; a call refused as asked (rejected) is not.
    assert (version["requests"], version["errors"], version["rejected"]) == (4, 1, 1)
    assert version["accuracy"]["value"] == 0.5
    features = version["drift"]["features"]
    assert set(features) == {"input[0]", "input[1]", "input[2]", "input[3]"}
    assert features["input[0]"]["reference_size"] == 10
