"""Open Inference Protocol (KServe V2) routes; Triton and KServe clients work unchanged."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.background import BackgroundTask

from meshgate import __version__
from meshgate.core.routing import HotRoute, current_principal, hot_route, require
from meshgate.errors import NotFound
from meshgate.models.errors import InvalidInput
from meshgate.models.routes.common import caller_of, served_headers, service_of
from meshgate.models.runtime import ModelRuntime
from meshgate.models.tabular import TABULAR
from meshgate.models.tensors import HEADER_LENGTH
from meshgate.strictjson import require_json_type

health = APIRouter(prefix="/v2/health", tags=["inference (V2)"])
server = APIRouter(prefix="/v2", tags=["inference (V2)"])
router = APIRouter()
models = APIRouter(prefix="/v2/models", tags=["inference (V2)"])
inference = [require("inference")]
HOT: list[HotRoute] = []

INFER_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["inputs"],
                    "properties": {
                        "id": {"type": "string"},
                        "inputs": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["name", "shape", "datatype", "data"],
                            },
                        },
                        "outputs": {"type": "array", "items": {"type": "object"}},
                    },
                }
            },
            "application/octet-stream": {
                "schema": {"type": "string", "format": "binary"},
                "description": "Binary tensor extension (Inference-Header-Content-Length).",
            },
        },
    }
}


@health.get("/live", summary="Liveness (V2)")
async def live() -> dict[str, bool]:
    return {"live": True}


@health.get("/ready", summary="Readiness (V2): the model services are started")
async def ready(request: Request) -> Response:
    started = service_of(request).started
    return Response(
        b'{"ready":true}' if started else b'{"ready":false}',
        status_code=200 if started else 503,
        media_type="application/json",
    )


# The optional protocol extensions this server implements (Triton's names for them).
EXTENSIONS = ["binary_tensor_data"]


@server.get("", dependencies=inference, summary="Server metadata (V2)")
async def server_metadata() -> dict[str, Any]:
    return {"name": "meshgate", "version": __version__, "extensions": EXTENSIONS}


# The protocol's document writes the route with a trailing slash; clients call it without.
server.add_api_route(
    "/",
    server_metadata,
    methods=["GET"],
    dependencies=inference,
    summary="Server metadata (V2)",
    operation_id="server_metadata_v2_slash",
)


async def tabular_model(request: Request, name: str) -> ModelRuntime:
    rt = await service_of(request).runtime(current_principal(request).tenant, name)
    if rt.task not in TABULAR:
        raise NotFound(f"no V2 model named {name!r} ({name} is a {rt.task} model)")
    return rt


def metadata(rt: ModelRuntime, version: str | None) -> dict[str, Any]:
    default = next((v for v in rt.split.versions if v in rt.versions), None)
    chosen = rt.version(version) if version else rt.versions.get(default or "")
    if chosen is None:
        raise NotFound(f"model {rt.name!r} has no version {version!r}")
    signature = chosen.signature
    return {
        "name": rt.name,
        "versions": list(rt.versions),
        "platform": chosen.provider.kind,
        "inputs": [t.model_dump(exclude_none=True) for t in signature.inputs],
        "outputs": [t.model_dump(exclude_none=True) for t in signature.outputs],
    }


@models.get("/{name}", dependencies=inference, summary="Model metadata (V2)")
async def model_metadata(name: str, request: Request) -> dict[str, Any]:
    return metadata(await tabular_model(request, name), None)


@models.get(
    "/{name}/versions/{version}", dependencies=inference, summary="Model version metadata (V2)"
)
async def version_metadata(name: str, version: str, request: Request) -> dict[str, Any]:
    return metadata(await tabular_model(request, name), version)


@models.get("/{name}/ready", dependencies=inference, summary="Model readiness (V2)")
async def model_ready(name: str, request: Request) -> dict[str, Any]:
    rt = await tabular_model(request, name)
    return {"name": rt.name, "ready": bool(rt.versions)}


@models.get(
    "/{name}/versions/{version}/ready",
    dependencies=inference,
    summary="Model version readiness (V2)",
)
async def version_ready(name: str, version: str, request: Request) -> dict[str, Any]:
    rt = await tabular_model(request, name)
    if rt.version(version) is None:
        raise NotFound(f"model {rt.name!r} has no version {version!r}")
    return {"name": rt.name, "version": version, "ready": True}


async def infer(request: Request) -> Response:
    return await _infer(request, request.path_params["name"], None)


async def infer_version(request: Request) -> Response:
    params = request.path_params
    return await _infer(request, params["name"], params["version"])


async def _infer(request: Request, name: str, version: str | None) -> Response:
    header = request.headers.get(HEADER_LENGTH)
    if header is not None and not header.isdigit():
        raise InvalidInput(f"{HEADER_LENGTH} must be a byte count")
    if header is None:
        require_json_type(request.headers.get("content-type"))
    body = await request.body()
    caller = await caller_of(request)
    if version is not None:
        caller.version = version
    served = await service_of(request).tabular.infer(
        name, body, int(header) if header else None, caller, versioned=version is not None
    )
    content, json_length = served.value
    headers = served_headers(request, name, served)
    if json_length is not None:
        headers[HEADER_LENGTH] = str(json_length)
    return Response(
        content,
        media_type="application/octet-stream" if json_length is not None else "application/json",
        headers=headers,
        background=BackgroundTask(served.run_after) if served.after else None,
    )


hot_route(
    models,
    "POST",
    "/{name}/infer",
    infer,
    scope="inference",
    hot=HOT,
    summary="Inference (V2)",
    openapi_extra=INFER_SCHEMA,
)
hot_route(
    models,
    "POST",
    "/{name}/versions/{version}/infer",
    infer_version,
    scope="inference",
    hot=HOT,
    summary="Inference on one version (V2)",
    openapi_extra=INFER_SCHEMA,
)
router.include_router(health)
router.include_router(server)
router.include_router(models)
