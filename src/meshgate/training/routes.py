"""REST for datasets and training jobs: the trigger and status API for orchestrators."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import Field
from pydantic.config import JsonDict
from starlette.requests import ClientDisconnect

from meshgate.core.routing import current_principal, require
from meshgate.core.state import service_of as registered
from meshgate.errors import BadRequest, UnsupportedMediaType
from meshgate.models.config import NAME
from meshgate.strictjson import RequestBody
from meshgate.training.service import TrainingService
from meshgate.training.spec import TrainingConfig
from meshgate.training.views import DatasetView, JobView, RegisteredVersion, TrainingJobView

router = APIRouter(prefix="/v1", tags=["training"])
ID = r"^[a-z]{2,3}_[0-9a-f]{20}$"
# Path ids are checked loosely: an id of a shape never issued is simply not found.
PATH_ID = r"^[A-Za-z0-9_.-]{1,64}$"
DatasetId = Annotated[str, Path(pattern=PATH_ID, description="Dataset id (ds_...).")]
JobId = Annotated[str, Path(pattern=PATH_ID, description="Job id (job_... or ds_...).")]
ModelName = Annotated[str, Path(pattern=NAME, description="Model name.")]
TIME: JsonDict = {"format": "date-time"}


class DatasetCreate(RequestBody):
    model: str = Field(pattern=NAME, description="The model whose predictions to use.")
    versions: list[Annotated[str, Field(pattern=NAME)]] | None = Field(
        None, min_length=1, max_length=100, description="Only these versions; default all."
    )
    since: str | None = Field(
        None, description="Predictions made at or after this RFC 3339 time.", json_schema_extra=TIME
    )
    until: str | None = Field(
        None,
        description="The cut-off: predictions made and feedback recorded at or before it "
        "(default: the time of the request).",
        json_schema_extra=TIME,
    )
    label: Literal["feedback"] = Field("feedback", description="Where labels come from.")


class TrainCreate(RequestBody):
    dataset: str = Field(pattern=ID, description="A built dataset of this model.")
    params: dict[str, Any] = Field(
        default_factory=dict, description="Trainer parameters; override the declared ones."
    )
    auto_rollout: bool = Field(
        True, description="Start a rollout when the new version beats production by the margin."
    )


def service_of(request: Request) -> TrainingService:
    return registered(request, TrainingService)


@router.post(
    "/datasets",
    status_code=202,
    dependencies=[require("events:read")],
    response_model=DatasetView,
    response_model_exclude_unset=True,
    summary="Build a training set from the event log (in the background)",
)
async def create_dataset(body: DatasetCreate, request: Request, response: Response) -> Any:
    p = current_principal(request)
    created = await service_of(request).request_dataset(p.tenant, body.model_dump(), p.key_id)
    response.headers["Location"] = f"/v1/datasets/{created['id']}"
    return created


@router.get(
    "/datasets/{dataset_id}",
    dependencies=[require("events:read")],
    response_model=DatasetView,
    response_model_exclude_unset=True,
    summary="A dataset: status, progress and, once built, its manifest",
)
async def get_dataset(dataset_id: DatasetId, request: Request) -> Any:
    return await service_of(request).dataset(current_principal(request).tenant, dataset_id)


@router.get(
    "/datasets/{dataset_id}/download",
    dependencies=[require("events:read")],
    response_class=FileResponse,
    responses={200: {"content": {"application/vnd.apache.parquet": {}}}},
    summary="The dataset's Parquet file",
)
async def download_dataset(dataset_id: DatasetId, request: Request) -> FileResponse:
    tenant = current_principal(request).tenant
    path, digest = await service_of(request).dataset_file(tenant, dataset_id)
    return FileResponse(
        path,
        media_type="application/vnd.apache.parquet",
        filename=f"{dataset_id}.parquet",
        headers={"ETag": f'"{digest}"', "x-content-sha256": digest},
    )


@router.post(
    "/registry/models/{name}/train",
    status_code=202,
    dependencies=[require("registry:write")],
    tags=["registry"],
    response_model=TrainingJobView,
    response_model_exclude_unset=True,
    summary="Train a new version with the model's declared trainer (a background job)",
)
async def train(name: ModelName, body: TrainCreate, request: Request, response: Response) -> Any:
    p = current_principal(request)
    job = await service_of(request).request_training(p.tenant, name, body.model_dump(), p.key_id)
    response.headers["Location"] = f"/v1/jobs/{job['id']}"
    return job


ZIP_TYPES = ("application/zip", "application/x-zip-compressed", "application/octet-stream")
IMPORT_PATH = "/registry/models/{name}/imports/mlflow"


def body_limits(config: TrainingConfig) -> list[tuple[str, str, int]]:
    """Routes whose bodies have a limit of their own: (method, path template, bytes)."""
    return [("POST", router.prefix + IMPORT_PATH, config.max_import_bytes)]


@router.post(
    IMPORT_PATH,
    status_code=201,
    dependencies=[require("registry:write")],
    tags=["registry"],
    response_model=RegisteredVersion,
    response_model_exclude_unset=True,
    summary="Register a zipped MLflow model directory (onnx, or sklearn saved with skops)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                media: {"schema": {"type": "string", "format": "binary"}}
                for media in ("application/zip", "application/octet-stream")
            },
        }
    },
)
async def import_mlflow(
    name: ModelName,
    request: Request,
    version: Annotated[str, Query(pattern=NAME, description="The version to register.")],
) -> Any:
    """The MLmodel's run id, model uuid and flavour go into the version's lineage; its tensor
    signature, when it has one, becomes the version's (else the production version's).

    The archive may be as large as ``training.max_import_bytes`` (64 MiB by default), not
    the ``max_body_bytes`` of other routes; a larger one is a 413 and nothing is stored."""
    p = current_principal(request)
    media = request.headers.get("content-type", "").split(";")[0].strip()
    if media not in ZIP_TYPES:
        raise UnsupportedMediaType(
            f"send the MLflow model directory as application/zip, not {media or 'nothing'!r}",
            field="content-type",
        )
    try:
        archive = await request.body()
    except ClientDisconnect:
        # Also what the body limit makes of an upload it cut off (its 413 is already sent).
        raise BadRequest("the upload ended before its last byte", field="body") from None
    return await service_of(request).import_mlflow(p.tenant, name, version, archive, p.key_id)


@router.get(
    "/jobs/{job_id}",
    dependencies=[require("registry:write")],
    response_model=JobView,
    response_model_exclude_unset=True,
    summary="A job: status, progress, metrics and the version it registered",
)
async def get_job(job_id: JobId, request: Request) -> Any:
    return await service_of(request).job(current_principal(request).tenant, job_id)
