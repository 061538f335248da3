"""Datasets through HTTP: predictions of the demo classifier joined with their feedback."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable

import httpx
import pyarrow.parquet as pq
import pytest

from meshgate.config import Settings
from tests.conftest import app_client
from tests.training.helpers import (
    build_dataset,
    finished,
    give_feedback,
    last_event_time,
    predict,
)

FLOWER = [5.1, 3.5, 1.4, 0.2]
FEEDBACK = "meshgate.prediction.feedback"


async def test_point_in_time_without_erased_users(make_settings: Callable[..., Settings]) -> None:
    async with app_client(make_settings(demo=True)) as client:
        ids = {}
        for n in range(6):
            ids[n] = await predict(client, [v + n / 10 for v in FLOWER], user=f"user-{n}")
        unlabelled = await predict(client, FLOWER, user="user-9")
        for n in range(5):
            await give_feedback(client, ids[n], n % 3)
        cutoff = await last_event_time(client, FEEDBACK)
        # After the cut-off: a correction of a known label, and a first label for another.
        await give_feedback(client, ids[0], 2)
        await give_feedback(client, ids[5], 1)
        erased = await client.delete("/v1/context/users/user-1")
        assert erased.status_code == 200, erased.text

        manifest = await build_dataset(client, model="iris", until=cutoff)
        download = await client.get(f"/v1/datasets/{manifest['id']}/download")

    assert download.status_code == 200, download.text
    assert download.headers["content-type"] == "application/vnd.apache.parquet"
    assert hashlib.sha256(download.content).hexdigest() == manifest["sha256"]
    rows = pq.read_table(io.BytesIO(download.content)).to_pylist()
    labels = {r["prediction_id"]: r["label"] for r in rows}
    # user-1 erased; ids[5] labelled only after the cut-off; the last one never labelled.
    assert labels == {ids[0]: 0, ids[2]: 2, ids[3]: 0, ids[4]: 1}
    assert ids[1] not in labels and ids[5] not in labels and unlabelled not in labels
    assert all(r["feedback_at"].isoformat() <= cutoff.replace("Z", "+00:00") for r in rows)
    assert manifest["rows"] == 4 and manifest["model"] == "iris"
    assert manifest["left_out"]["erased"] == 1 and manifest["left_out"]["unlabeled"] == 2
    assert manifest["features"] == ["input[0]", "input[1]", "input[2]", "input[3]"]
    assert [c["name"] for c in manifest["schema"]][:3] == [
        "prediction_id",
        "predicted_at",
        "version",
    ]
    assert manifest["query"]["until"] == cutoff and manifest["query"]["label"] == "feedback"
    assert manifest["time_range"]["first"] <= manifest["time_range"]["last"] <= cutoff
    row = next(r for r in rows if r["prediction_id"] == ids[3])
    assert (
        row["input[0]"] == pytest.approx(5.4)
        and row["version"] in ("1", "2")
        and row["predicted"] in (0, 1, 2)
    )


async def test_datasets_belong_to_their_tenant_and_bad_requests_change_nothing(
    client: httpx.AsyncClient,
) -> None:
    created = await client.post("/v1/registry/models", json={"name": "m", "task": "regression"})
    assert created.status_code == 201
    manifest = await build_dataset(client, model="m")
    assert manifest["rows"] == 0 and manifest["versions"] == []
    empty = await client.get(f"/v1/datasets/{manifest['id']}/download")
    assert empty.status_code == 200 and pq.read_table(io.BytesIO(empty.content)).num_rows == 0

    other = await client.post("/v1/admin/keys", json={"tenant": "acme", "scopes": ["admin"]})
    outsider = {"Authorization": f"Bearer {other.json()['key']}"}
    for path in (f"/v1/datasets/{manifest['id']}", f"/v1/datasets/{manifest['id']}/download"):
        assert (await client.get(path, headers=outsider)).status_code == 404
    assert (await client.get(f"/v1/jobs/{manifest['id']}", headers=outsider)).status_code == 404
    assert (
        await client.post("/v1/datasets", json={"model": "m"}, headers=outsider)
    ).status_code == 404

    for body, status in (
        ({"model": "nope"}, 404),
        ({"model": "m", "versions": ["7"]}, 422),
        ({"model": "m", "since": "yesterday"}, 422),
        ({"model": "m", "since": "2030-01-02T00:00:00Z", "until": "2030-01-01T00:00:00Z"}, 422),
        ({"model": "m", "label": "guess"}, 422),
        ({"model": "m", "sql": "DROP TABLE jobs"}, 422),
    ):
        answer = await client.post("/v1/datasets", json=body)
        assert answer.status_code == status, (body, answer.text)
    assert (await client.get("/v1/datasets/ds_00000000000000000000")).status_code == 404
    assert (await client.get("/v1/datasets/nope")).status_code == 404
    assert (await client.get("/v1/datasets/a%20b")).status_code == 422


async def test_jobs_a_stopped_runner_left_are_run_again_or_failed(
    client: httpx.AsyncClient,
) -> None:
    created = await client.post("/v1/registry/models", json={"name": "m", "task": "regression"})
    assert created.status_code == 201
    platform = client.app.state.services  # type: ignore[attr-defined]
    sql = platform.sql
    request = {
        "model": "m",
        "versions": None,
        "since": None,
        "until": "2030-01-01T00:00:00.000000Z",
    }
    ids = [f"ds_{n:020x}" for n in (1, 2)]
    for job_id, attempts in zip(ids, (1, 3), strict=True):
        # As a runner on a node that died left it: running, under a name no runner has now.
        await sql.execute(
            "INSERT INTO jobs (id, tenant, kind, model, status, request, holder, attempts,"
            " created_by, created_at) VALUES (?, 'default', 'dataset', 'm', 'running', ?,"
            " 'gone:1', ?, 'test', '2026-12-01T00:00:00+00:00')",
            (job_id, json.dumps(request), attempts),
        )
    await platform.jobs.recover()  # what a runner does when it takes the lease over
    again = await finished(client, f"/v1/datasets/{ids[0]}")
    given_up = (await client.get(f"/v1/datasets/{ids[1]}")).json()
    failed = await client.get("/v1/events", params={"type": "meshgate.training.failed"})
    assert again["status"] == "succeeded" and again["attempts"] == 2
    assert given_up["status"] == "failed" and "3 attempts" in given_up["error"]
    assert [e["data"]["job"] for e in failed.json()["events"]] == [ids[1]]


async def test_a_dataset_on_postgresql(
    make_settings: Callable[..., Settings], postgres_url: str
) -> None:
    async with app_client(make_settings(demo=True, database_url=postgres_url)) as client:
        ids = [await predict(client, [v + n / 10 for v in FLOWER]) for n in range(3)]
        for n, prediction in enumerate(ids):
            await give_feedback(client, prediction, n)
        manifest = await build_dataset(client, model="iris")
        download = await client.get(f"/v1/datasets/{manifest['id']}/download")
    assert hashlib.sha256(download.content).hexdigest() == manifest["sha256"]
    rows = pq.read_table(io.BytesIO(download.content)).to_pylist()
    assert {r["prediction_id"]: r["label"] for r in rows} == dict(zip(ids, range(3), strict=True))


async def test_a_dataset_is_written_a_row_group_at_a_time(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(demo=True, training={"row_group_rows": 2})
    async with app_client(settings) as client:
        ids = [await predict(client, [v + n / 10 for v in FLOWER]) for n in range(5)]
        for n, prediction in enumerate(ids):
            await give_feedback(client, prediction, n % 3)
        manifest = await build_dataset(client, model="iris")
        download = await client.get(f"/v1/datasets/{manifest['id']}/download")
    assert hashlib.sha256(download.content).hexdigest() == manifest["sha256"]
    assert len(download.content) == manifest["size"]
    file = pq.ParquetFile(io.BytesIO(download.content))
    assert [file.metadata.row_group(g).num_rows for g in range(file.num_row_groups)] == [2, 2, 1]
    assert [{"name": f.name, "type": str(f.type)} for f in file.schema_arrow] == manifest["schema"]
    rows = file.read().to_pylist()
    assert [(r["prediction_id"], r["label"]) for r in rows] == [
        (p, n % 3) for n, p in enumerate(ids)
    ]
    assert [r["input[0]"] for r in rows] == pytest.approx([5.1 + n / 10 for n in range(5)])
    times = [r["predicted_at"] for r in rows]
    assert times == sorted(times) and manifest["rows"] == 5
    assert manifest["time_range"]["first"] == times[0].isoformat().replace("+00:00", "Z")
    assert manifest["time_range"]["last"] == times[-1].isoformat().replace("+00:00", "Z")
