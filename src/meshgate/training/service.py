"""Datasets and training jobs: what the API queues, and what the runner does with each job.

Requests are checked and queued by the node that receives them; the cluster's one runner
(:mod:`meshgate.training.runner`) builds datasets here, in its event loop, and trains in a
separate process (:mod:`meshgate.training.child`) with time and memory limits. A dataset's
file is stored by content in the shared SQL store, so every node serves the same bytes.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from meshgate import __version__
from meshgate.errors import Conflict, NotFound, ValidationFailed
from meshgate.events.catalogue import (
    TRAINING_FAILED,
    TRAINING_QUEUED,
    TRAINING_SUCCEEDED,
    EventType,
    JobKind,
    JobQueued,
    JobSucceeded,
    Payload,
)
from meshgate.events.catalogue import JobFailed as JobFailedPayload
from meshgate.events.envelope import format_time, now, parse_time
from meshgate.events.ports import EventPublisher
from meshgate.events.service import EventService
from meshgate.governance.ports import AuditRecorder
from meshgate.models.artifacts import ArtifactStore
from meshgate.models.config import VersionCreate
from meshgate.training import datasets, mlflow
from meshgate.training.jobs import Job, JobStore
from meshgate.training.ports import ModelRegistrar, RolloutStarter
from meshgate.training.process import run_trainer
from meshgate.training.spec import TrainerSpec
from meshgate.training.versions import (
    next_version,
    production_of,
    registered_by,
    roll_out_if_better,
)

log = logging.getLogger("meshgate.training")
TRUSTED = re.compile(r"^(sklearn|numpy|scipy)\.[A-Za-z0-9_.]+$")
PROGRESS_EVERY = 0.5
REGISTER_TRIES = 5


class TrainingService:
    def __init__(
        self,
        jobs: JobStore,
        *,
        events: EventService,
        publisher: EventPublisher,
        audit: AuditRecorder,
        registrar: ModelRegistrar,
        blobs: ArtifactStore,
        trainers: Mapping[tuple[str, str], TrainerSpec],
        work_dir: Path,
        rollouts: RolloutStarter | None = None,
        row_group_rows: int = datasets.ROW_GROUP_ROWS,
    ):
        self.jobs = jobs
        self.events = events
        self.publisher = publisher
        self.audit = audit
        self.registrar = registrar
        self.blobs = blobs
        self.trainers = dict(trainers)
        self.work_dir = work_dir
        self.rollouts = rollouts
        self.row_group_rows = row_group_rows
        self.wake = asyncio.Event()
        """Set when this node queues a job, so a runner here starts it at once."""

    def declare_trainers(self, trainers: Mapping[tuple[str, str], TrainerSpec]) -> None:
        self.trainers = dict(trainers)

    # --- the API ------------------------------------------------------------------------------

    async def request_dataset(
        self, tenant: str, body: dict[str, Any], actor: str
    ) -> dict[str, Any]:
        model = await self.registrar.model(tenant, body["model"])
        versions = body.get("versions")
        if versions is not None:
            known = {v["version"] for v in model["versions"]}
            if unknown := sorted(set(versions) - known):
                raise ValidationFailed(
                    f"model {body['model']!r} has no version {', '.join(unknown)}",
                    field="versions",
                )
        since = parse_time(body["since"], "since") if body.get("since") else None
        until = parse_time(body["until"], "until") if body.get("until") else None
        cutoff = until or now()
        if since is not None and since > cutoff:
            raise ValidationFailed("'since' is after 'until' (or after now)", field="since")
        request = {
            "model": body["model"],
            "versions": sorted(versions) if versions is not None else None,
            "since": format_time(since) if since is not None else None,
            "until": format_time(cutoff),
            "label": "feedback",
        }
        job = await self.jobs.create(
            tenant=tenant, kind="dataset", model=body["model"], request=request, actor=actor
        )
        await self._queued(job, actor)
        self.wake.set()
        return dataset_view(job)

    async def dataset(self, tenant: str, dataset_id: str) -> dict[str, Any]:
        return dataset_view(await self.jobs.get(tenant, dataset_id, "dataset"))

    async def dataset_file(self, tenant: str, dataset_id: str) -> tuple[Path, str]:
        """The local copy of a built dataset's file and its sha256."""
        job = await self.jobs.get(tenant, dataset_id, "dataset")
        if job.status != "succeeded" or job.result is None:
            raise Conflict(f"dataset {dataset_id} is {job.status}, not built")
        return await self.blobs.fetch(job.result["file"]), job.result["sha256"]

    async def request_training(
        self, tenant: str, model: str, body: dict[str, Any], actor: str
    ) -> dict[str, Any]:
        await self.registrar.model(tenant, model)
        spec = self.trainers.get((tenant, model))
        if spec is None:
            raise Conflict(
                f"model {model!r} declares no trainer; a trainer is declared in the config "
                "file (models[].trainer), never through the API"
            )
        found = await self.jobs.find(tenant, body["dataset"])
        if found is None or found.kind != "dataset":
            raise NotFound(f"no dataset {body['dataset']!r}")
        if found.model != model:
            raise ValidationFailed(
                f"dataset {found.id} was built for {found.model!r}, not {model!r}",
                field="dataset",
            )
        if found.status != "succeeded":
            raise Conflict(f"dataset {found.id} is {found.status}; train once it is built")
        request = {
            "dataset": found.id,
            "params": {**spec.params, **body.get("params", {})},
            "auto_rollout": body.get("auto_rollout", True),
        }
        job = await self.jobs.create(
            tenant=tenant, kind="training", model=model, request=request, actor=actor
        )
        await self._queued(job, actor)
        self.wake.set()
        return job.public()

    async def import_mlflow(
        self, tenant: str, model: str, version: str, archive: bytes, actor: str
    ) -> dict[str, Any]:
        """A zipped MLflow model directory as a new version of ``model`` (run id in lineage)."""
        found = await self.registrar.model(tenant, model)
        if any(v["version"] == version for v in found["versions"]):
            raise Conflict(f"version {version!r} of {model!r} exists; versions are immutable")
        imported = mlflow.read(archive)
        await mlflow.check_loads(imported)
        ref = await self.blobs.put(imported.data)
        parent = production_of(found)
        signature = imported.signature or (parent.get("signature", {}) if parent else {})
        provider: dict[str, Any] = {"type": imported.kind, "artifact": ref}
        if imported.kind == "sklearn":
            provider["trusted"] = imported.trusted
        lineage = {**imported.lineage, "parent_version": parent["version"] if parent else None}
        return await self.registrar.register(
            tenant,
            model,
            VersionCreate.model_validate(
                {
                    "version": version,
                    "provider": provider,
                    "signature": signature,
                    "metadata": {"lineage": lineage},
                }
            ),
            actor,
        )

    async def job(self, tenant: str, job_id: str) -> dict[str, Any]:
        job = await self.jobs.get(tenant, job_id)
        return dataset_view(job) if job.kind == "dataset" else job.public()

    # --- what the runner does -----------------------------------------------------------------

    async def run(self, job: Job, holder: str) -> None:
        """Run one claimed job to its end; every failure is the job's, with its reason."""
        try:
            if job.kind == "dataset":
                result = await self._build(job, holder)
            else:
                result = await self._train(job, holder)
        except asyncio.CancelledError:
            raise
        except JobFailed as exc:
            await self._fail(job, holder, exc.reason)
            return
        except Exception as exc:
            log.exception("job %s failed", job.id)
            await self._fail(job, holder, f"{type(exc).__name__}: {exc}")
            return
        if await self.jobs.finish(job.id, holder, result=result):
            if job.kind == "dataset":
                done = JobSucceeded(
                    job=job.id,
                    kind="dataset",
                    model=job.model,
                    rows=result["rows"],
                    sha256=result["sha256"],
                )
            else:
                done = JobSucceeded(
                    job=job.id,
                    kind="training",
                    model=job.model,
                    dataset=result["dataset"]["id"],
                    sha256=result["dataset"]["sha256"],
                    version=result["version"],
                    parent_version=result["parent_version"],
                    metrics=result["metrics"],
                    rollout=result["rollout"],
                )
            await self._tell(job, TRAINING_SUCCEEDED, done, version=result.get("version"))

    async def _fail(self, job: Job, holder: str, reason: str) -> None:
        if await self.jobs.finish(job.id, holder, error=reason):
            await self.tell_failed(job, reason)

    async def tell_failed(self, job: Job, reason: str) -> None:
        failed = JobFailedPayload(job=job.id, kind=_kind(job), model=job.model, reason=reason)
        await self._tell(job, TRAINING_FAILED, failed)

    async def _build(self, job: Job, holder: str) -> dict[str, Any]:
        r = job.request
        query = datasets.DatasetQuery(
            tenant=job.tenant,
            model=r["model"],
            versions=frozenset(r["versions"]) if r["versions"] is not None else None,
            since=parse_time(r["since"]) if r["since"] else None,
            cutoff=parse_time(r["until"]),
        )
        last = 0.0
        loop = asyncio.get_running_loop()

        async def progress(read: int, of: int) -> None:
            nonlocal last
            if loop.time() - last >= PROGRESS_EVERY or read >= of:
                last = loop.time()
                await self.jobs.report(job.id, holder, {"read": read, "of": of})

        folder = self._fresh_folder(job)
        try:
            built = await datasets.build(self.events, query, progress, folder, self.row_group_rows)
            ref = await self.blobs.put(await asyncio.to_thread(built.path.read_bytes))
        finally:
            await asyncio.to_thread(shutil.rmtree, folder, True)
        return {**built.manifest, "file": ref}

    async def _train(self, job: Job, holder: str) -> dict[str, Any]:
        spec = self.trainers.get((job.tenant, job.model))
        if spec is None:
            raise JobFailed(f"model {job.model!r} no longer declares a trainer")
        dataset = await self.jobs.get(job.tenant, job.request["dataset"], "dataset")
        manifest = dataset.result or {}
        model = await self.registrar.model(job.tenant, job.model)
        if (earlier := registered_by(model, job.id)) is not None:
            # An earlier attempt registered the version, then its runner stopped or lost the
            # lease before it marked the job done: this attempt finishes that one's work.
            log.info("job %s registered version %s before; reusing it", job.id, earlier["version"])
            return await self._result(job, spec, earlier)
        parent = production_of(model)
        path = await self.blobs.fetch(manifest["file"])
        workdir = self._fresh_folder(job)
        try:
            shutil.copyfile(path, workdir / "dataset.parquet")
            await self.jobs.report(job.id, holder, {"stage": "training"})
            outcome = await run_trainer(
                workdir,
                {
                    "entrypoint": spec.entrypoint,
                    "task": model["task"],
                    "features": manifest["features"],
                    "holdout": spec.holdout,
                    "seed": spec.seed,
                    "params": job.request["params"],
                    "format": spec.format,
                    "production": parent["version"] if parent else None,
                },
                timeout_seconds=spec.timeout_seconds,
                memory_mb=spec.memory_mb,
            )
            if not outcome.ok:
                raise JobFailed(outcome.reason or "training failed")
            result = outcome.result
            if bad := [t for t in result["trusted"] if not TRUSTED.match(t)]:
                raise JobFailed(f"the trained model needs types skops does not trust: {bad}")
            data = (workdir / result["artifact"]).read_bytes()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        ref = await self.blobs.put(data)
        lineage = {
            "job": job.id,
            "dataset": {"id": dataset.id, "sha256": manifest["sha256"], "rows": manifest["rows"]},
            "code_version": {
                "trainer": spec.entrypoint,
                "meshgate": __version__,
                "source_sha256": result.get("source_sha256"),
            },
            "parameters": job.request["params"],
            "metrics": result["metrics"],
            "baseline": result["baseline"],
            "holdout": {"share": spec.holdout, "seed": spec.seed, **result["rows"]},
            "parent_version": parent["version"] if parent else None,
        }

        def version_named(name: str) -> VersionCreate:
            return VersionCreate.model_validate(
                {
                    "version": name,
                    "provider": {
                        "type": "onnx" if spec.format == "onnx" else "sklearn",
                        "artifact": ref,
                        **({"trusted": result["trusted"]} if spec.format == "skops" else {}),
                    },
                    "signature": parent.get("signature", {}) if parent else {},
                    "metadata": {
                        "lineage": lineage,
                        "expectations": {
                            "action": spec.validation,
                            "dataset": dataset.id,
                            "features": manifest.get("expectations", {}),
                        },
                    },
                }
            )

        return await self._result(job, spec, await self._register_once(job, holder, version_named))

    async def _register_once(
        self, job: Job, holder: str, version_named: Callable[[str], VersionCreate]
    ) -> dict[str, Any]:
        """Register the job's version, unless an attempt of the same job already did.

        The job id in the version's lineage is what a retry finds. The model is read again
        right before registering, as another attempt (a runner that lost its lease while it
        trained) may have registered meanwhile; two attempts that register at once pick the
        same next number, so the second gets a conflict, looks again and finds the first's.
        """
        for _ in range(REGISTER_TRIES):
            model = await self.registrar.model(job.tenant, job.model)
            if (earlier := registered_by(model, job.id)) is not None:
                return earlier
            if await self.jobs.holder_of(job.id) != holder:
                # Handed to another runner while this one trained: that one registers.
                raise JobFailed("the job was handed to another runner")
            try:
                return await self.registrar.register(
                    job.tenant, job.model, version_named(next_version(model)), job.created_by
                )
            except Conflict:
                continue
        raise JobFailed(f"no free version number after {REGISTER_TRIES} tries")

    async def _result(self, job: Job, spec: TrainerSpec, version: dict[str, Any]) -> dict[str, Any]:
        """The job's result from the version it registered (the same on every attempt)."""
        lineage = version["metadata"]["lineage"]
        name = version["version"]
        out = {
            "version": name,
            "artifact": version["provider"]["artifact"],
            "metrics": lineage["metrics"],
            **lineage,
        }
        out["rollout"] = await roll_out_if_better(self.rollouts, job, spec.promote, name, lineage)
        return out

    def _fresh_folder(self, job: Job) -> Path:
        """A new folder for this attempt; those of earlier attempts (whose node was killed)
        are removed first."""
        self.work_dir.mkdir(parents=True, exist_ok=True)
        for stale in self.work_dir.glob(f"{job.id}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        return Path(tempfile.mkdtemp(prefix=f"{job.id}-", dir=self.work_dir))

    async def _queued(self, job: Job, actor: str) -> None:
        queued = JobQueued(job=job.id, kind=_kind(job), model=job.model, request=job.request)
        await self._tell(job, TRAINING_QUEUED, queued, actor=actor)

    async def _tell(
        self,
        job: Job,
        kind: EventType[Any],
        payload: Payload,
        *,
        actor: str | None = None,
        version: str | None = None,
    ) -> None:
        data = kind.data(payload)
        await self.publisher.publish(
            kind.name, tenant=job.tenant, data=data, subject=f"jobs/{job.id}"
        )
        await self.audit.record(
            actor=actor or job.created_by,
            tenant=job.tenant,
            action=kind.name.removeprefix("meshgate."),
            resource=f"jobs/{job.id}",
            details=data,
            model_version=version,
        )


def _kind(job: Job) -> JobKind:
    return "dataset" if job.kind == "dataset" else "training"


class JobFailed(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def dataset_view(job: Job) -> dict[str, Any]:
    """A dataset as the API shows it: status, request, and once built its manifest."""
    manifest = {k: v for k, v in (job.result or {}).items() if k != "file"}
    return {
        "id": job.id,
        "status": job.status,
        "model": job.model,
        "request": job.request,
        "progress": job.progress,
        "error": job.error,
        "attempts": job.attempts,
        "created_by": job.created_by,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        **manifest,
    }
