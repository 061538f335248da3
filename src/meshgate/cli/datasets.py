"""``meshgate datasets build | show | download`` and ``meshgate train``, over the API.

``build`` queues a dataset, follows the server's progress with a bar, and downloads the
Parquet file when ``--output`` names one; the file's sha256 is checked against the manifest.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from meshgate.cli.api import TYPER, api, fail, print_json
from meshgate.cli.events import parse_since

if TYPE_CHECKING:
    from meshgate.client import Client

app = typer.Typer(**TYPER)
JsonOption = Annotated[bool, typer.Option("--json", help="One JSON document, for scripts.")]
OutputOption = Annotated[
    Path | None, typer.Option("--output", "-o", help="Write the Parquet file here.")
]
POLL_SECONDS = 0.2


def _follow(mesh: Client, path: str, label: str) -> dict[str, Any]:
    """Poll ``path`` until its job ends, with a progress bar on stderr."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=None, status="queued")
        while True:
            state: dict[str, Any] = mesh.send("GET", path).json()
            done = state.get("progress") or {}
            if "of" in done:
                progress.update(task, total=max(done["of"], 1), completed=done["read"])
            progress.update(task, status=state["status"])
            if state["status"] in ("succeeded", "failed"):
                return state
            time.sleep(POLL_SECONDS)


def _download(mesh: Client, dataset: dict[str, Any], output: Path) -> None:
    data = mesh.send("GET", f"/v1/datasets/{dataset['id']}/download").content
    if hashlib.sha256(data).hexdigest() != dataset["sha256"]:
        fail(f"the download of {dataset['id']} does not match its manifest's sha256", 1)
    output.write_bytes(data)


@app.command()
def build(
    model: Annotated[str, typer.Option(help="The model whose predictions to use.")],
    version: Annotated[
        list[str] | None, typer.Option("--version", help="Only this version; repeat for several.")
    ] = None,
    since: Annotated[str | None, typer.Option(help="Predictions made at or after this.")] = None,
    until: Annotated[
        str | None, typer.Option(help="The cut-off for predictions and feedback (default now).")
    ] = None,
    output: OutputOption = None,
    as_json: JsonOption = False,
) -> None:
    """Build a training set: predictions joined with the feedback known at the cut-off."""
    body: dict[str, Any] = {"model": model, "label": "feedback"}
    if version:
        body["versions"] = version
    if since is not None:
        body["since"] = parse_since(since)
    if until is not None:
        body["until"] = parse_since(until)
    with api() as mesh:
        created = mesh.send("POST", "/v1/datasets", json=body).json()
        state = _follow(mesh, f"/v1/datasets/{created['id']}", f"building {created['id']}")
        if state["status"] == "failed":
            fail(f"dataset {state['id']} failed: {state['error']}", 1)
        if output is not None:
            _download(mesh, state, output)
    if as_json:
        print_json(state)
        return
    typer.echo(
        f"dataset {state['id']}: {state['rows']} rows, sha256 {state['sha256']}"
        + (f", written to {output}" if output else "")
    )


@app.command()
def show(dataset_id: str) -> None:
    """A dataset's status and manifest (JSON)."""
    with api() as mesh:
        print_json(mesh.send("GET", f"/v1/datasets/{dataset_id}").json())


@app.command()
def download(dataset_id: str, output: Annotated[Path, typer.Option("--output", "-o")]) -> None:
    """Download a built dataset's Parquet file (checked against its sha256)."""
    with api() as mesh:
        state = mesh.send("GET", f"/v1/datasets/{dataset_id}").json()
        if state["status"] != "succeeded":
            fail(f"dataset {dataset_id} is {state['status']}", 1)
        _download(mesh, state, output)
    typer.echo(f"written to {output}")


def train(
    model: str,
    dataset: Annotated[str, typer.Option(help="A built dataset of the model.")],
    param: Annotated[
        list[str] | None, typer.Option("--param", help="name=JSON value; repeat for several.")
    ] = None,
    no_rollout: Annotated[
        bool, typer.Option("--no-rollout", help="Never start a rollout automatically.")
    ] = False,
    wait: Annotated[bool, typer.Option(help="Follow the job until it ends.")] = True,
    as_json: JsonOption = False,
) -> None:
    """Train a new version with the model's declared trainer."""
    import json

    params: dict[str, Any] = {}
    for item in param or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise typer.BadParameter(f"{item!r} is not name=value", param_hint="--param")
        try:
            params[name] = json.loads(value)
        except ValueError:
            params[name] = value
    body = {"dataset": dataset, "params": params, "auto_rollout": not no_rollout}
    with api() as mesh:
        job = mesh.send("POST", f"/v1/registry/models/{model}/train", json=body).json()
        if wait:
            job = _follow(mesh, f"/v1/jobs/{job['id']}", f"training {job['id']}")
    if as_json:
        print_json(job)
    elif job["status"] == "failed":
        fail(f"job {job['id']} failed: {job['error']}", 1)
    elif job["status"] == "succeeded":
        result = job["result"]
        metrics = ", ".join(f"{k} {v:.4f}" for k, v in result["metrics"].items() if v is not None)
        typer.echo(f"job {job['id']}: version {result['version']} registered ({metrics})")
    else:
        typer.echo(f"job {job['id']}: {job['status']}")
    if job["status"] == "failed":
        raise typer.Exit(1)


def import_mlflow(
    model: str,
    directory: Annotated[Path, typer.Argument(help="An MLflow model directory (with MLmodel).")],
    version: Annotated[str, typer.Option(help="The version to register.")],
    as_json: JsonOption = False,
) -> None:
    """Register an MLflow model directory (onnx, or sklearn saved with skops) as a version."""
    import io
    import zipfile

    if not (directory / "MLmodel").is_file():
        raise typer.BadParameter(f"{directory} has no MLmodel file", param_hint="DIRECTORY")
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            z.write(path, path.relative_to(directory).as_posix())
    with api() as mesh:
        created = mesh.send(
            "POST",
            f"/v1/registry/models/{model}/imports/mlflow",
            params={"version": version},
            content=archive.getvalue(),
            headers={"content-type": "application/zip"},
        ).json()
    if as_json:
        print_json(created)
        return
    run_id = created["metadata"]["lineage"].get("run_id")
    typer.echo(f"registered {model} version {created['version']} (MLflow run {run_id})")
