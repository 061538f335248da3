"""The access log line, the metrics and the response agree on which model and version answered."""

from __future__ import annotations

import io
import logging
from typing import Any

import orjson
from prometheus_client.parser import text_string_to_metric_families

from meshgate.monitoring.logs import JsonFormatter
from tests.conftest import app_client

IRIS = {
    "inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": [5.1, 3.5, 1.4, 0.2]}]
}


async def test_an_inference_is_labelled_with_its_model_and_version(make_settings: Any) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    access = logging.getLogger("meshgate.access")
    access.addHandler(handler)
    previous = access.level
    access.setLevel(logging.INFO)
    try:
        async with app_client(make_settings(demo=True)) as client:
            answer = await client.post(
                "/v2/models/iris/infer", json=IRIS, headers={"x-user-id": "u-label"}
            )
            assert answer.status_code == 200, answer.text
            metrics = (await client.get("/metrics")).text
    finally:
        access.removeHandler(handler)
        access.setLevel(previous)
    version = answer.headers["x-model-version"]
    lines = [orjson.loads(line) for line in stream.getvalue().splitlines()]
    infer_line = next(line for line in lines if line.get("route") == "/v2/models/{name}/infer")
    assert (infer_line["model"], infer_line["version"]) == ("iris", version)
    served = [
        s
        for fam in text_string_to_metric_families(metrics)
        for s in fam.samples
        if s.name == "meshgate_model_requests_total" and s.labels.get("model") == "iris"
    ]
    assert any(s.labels.get("version") == version and s.value >= 1 for s in served), served
