"""Serving the demo classifier through the real routes, and waiting on background jobs."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from jsonschema import Draft202012Validator


async def predict(
    client: httpx.AsyncClient, row: list[float], *, user: str | None = None, model: str = "iris"
) -> str:
    body = {"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": row}]}
    headers = {"x-user-id": user} if user else {}
    answer = await client.post(f"/v2/models/{model}/infer", json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.headers["x-prediction-id"]


async def give_feedback(client: httpx.AsyncClient, prediction_id: str, label: Any) -> None:
    answer = await client.post(f"/v1/predictions/{prediction_id}/feedback", json={"label": label})
    assert answer.status_code == 201, answer.text


async def last_event_time(client: httpx.AsyncClient, type_: str) -> str:
    """The time of the newest event of ``type_``, as the log recorded it."""
    after, newest = 0, None
    while True:
        page = (await client.get("/v1/events", params={"type": type_, "after": after})).json()
        if not page["events"]:
            assert newest is not None
            return str(newest)
        newest = page["events"][-1]["time"]
        after = page["next_after"]


async def conforms(
    client: httpx.AsyncClient, method: str, template: str, status: int, body: Any
) -> None:
    """``body`` is what /openapi.json documents for ``method template`` answering ``status``."""
    doc = (await client.get("/openapi.json")).json()
    answer = doc["paths"][template][method]["responses"][str(status)]
    schema = answer["content"]["application/json"]["schema"]
    assert schema, f"{method} {template} documents no schema for {status}"
    validator = Draft202012Validator({**schema, "components": doc["components"]})
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(body)]
    assert not errors, errors


async def finished(client: httpx.AsyncClient, path: str, within: float = 60) -> dict[str, Any]:
    """GET ``path`` until the job there has succeeded or failed; the answer as documented."""
    async with asyncio.timeout(within):
        while True:
            answer = await client.get(path)
            assert answer.status_code == 200, answer.text
            if answer.json()["status"] in ("succeeded", "failed"):
                break
            await asyncio.sleep(0.05)
    parent = path.rsplit("/", 1)[0]
    template = parent + ("/{dataset_id}" if parent.endswith("/datasets") else "/{job_id}")
    await conforms(client, "get", template, 200, answer.json())
    return dict(answer.json())


async def build_dataset(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    created = await client.post("/v1/datasets", json=body)
    assert created.status_code == 202, created.text
    assert created.headers["location"] == f"/v1/datasets/{created.json()['id']}"
    await conforms(client, "post", "/v1/datasets", 202, created.json())
    done = await finished(client, created.headers["location"])
    assert done["status"] == "succeeded", done
    return done


def iris_shifted() -> tuple[list[list[float]], list[int]]:
    """Every other iris flower, with petals measured 2.5 cm longer: the inputs drifted."""
    from sklearn.datasets import load_iris

    x, y = load_iris(return_X_y=True)
    rows = [[a, b, c + 2.5, d] for a, b, c, d in x.tolist()[::2]]
    return rows, [int(v) for v in y.tolist()[::2]]


async def labelled(
    client: httpx.AsyncClient, model: str, rows: list[list[float]], labels: list[int]
) -> None:
    for row, label in zip(rows, labels, strict=True):
        await give_feedback(client, await predict(client, row, model=model), label)
