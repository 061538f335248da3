"""The one place where errors become HTTP responses.

Four shapes, chosen by route family: RFC 9457 problem+json everywhere, OpenAI's
``{"error": {...}}`` on the OpenAI-compatible routes, Anthropic's ``{"type": "error", ...}``
on ``/v1/messages``, ``{"error": "..."}`` on the V2 routes.
"""

from __future__ import annotations

import copy as copy_module
import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import compile_path
from starlette.types import Scope, Send

from meshgate.core import scope as request_scope
from meshgate.errors import (
    BadRequest,
    MeshgateError,
    MethodNotAllowed,
    NotFound,
    UnsupportedMediaType,
    ValidationFailed,
)
from meshgate.gateway.redact import redact
from meshgate.strictjson import is_json_type

log = logging.getLogger("meshgate.gateway")

OPENAI_PREFIXES = (
    "/v1/chat/", "/v1/embeddings", "/v1/models", "/v1/completions", "/v1/responses",
)  # fmt: skip
ANTHROPIC_PATHS = ("/v1/messages",)
PROBLEM_BASE = "https://meshgate.dev/problems/"

OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "not_found_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    415: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


def render(error: MeshgateError, path: str, request_id: str | None) -> tuple[str, bytes]:
    """(content type, body) for an error raised while serving ``path``."""
    if error.status >= 500:
        error = scrubbed(error)
    if path.startswith(ANTHROPIC_PATHS):
        from meshgate.models.translate.anthropic import error_body

        return "application/json", orjson.dumps(error_body(error.status, error.detail))
    if path.startswith(OPENAI_PREFIXES):
        body: dict[str, Any] = {
            "error": {
                "message": error.detail,
                "type": OPENAI_TYPES.get(error.status, "api_error"),
                "code": error.extra.get("code", error.slug),
                "param": error.extra.get("param"),
            }
        }
        return "application/json", orjson.dumps(body)
    if path == "/v2" or path.startswith("/v2/"):
        return "application/json", orjson.dumps({"error": error.detail})
    problem: dict[str, Any] = {
        "type": PROBLEM_BASE + error.slug,
        "title": error.title,
        "status": error.status,
        "detail": error.detail,
        "request_id": request_id,
    }
    problem.update({k: v for k, v in error.extra.items() if k != "code"})
    return "application/problem+json", orjson.dumps(problem)


def scrubbed(error: MeshgateError) -> MeshgateError:
    """A server-side failure without the hosts, ports or paths its message may name."""
    detail = redact(error.detail)
    if detail == error.detail:
        return error
    log.warning("%s (answered without internal names)", error.detail)
    copy = copy_module.copy(error)
    copy.detail = detail
    return copy


def response_parts(
    error: MeshgateError, scope: Scope
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    content_type, body = render(error, scope["path"], request_scope.request_id(scope) or None)
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    return error.status, headers, body


async def send_error(error: MeshgateError, scope: Scope, send: Send) -> None:
    """Answer an error straight from ASGI middleware, before any route ran."""
    status, headers, body = response_parts(error, scope)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def validation_error(exc: RequestValidationError, content_type: str | None = None) -> MeshgateError:
    """Name every bad field; malformed JSON is a 400, a body of another type a 415, a
    well-formed wrong body a 422."""
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        ctx = next(e.get("ctx", {}) for e in errors if e.get("type") == "json_invalid")
        return BadRequest(f"malformed JSON body: {ctx.get('error', 'cannot parse')}")
    # A check of the body as a whole (a model validator) also sits at ("body",): only a
    # body of the wrong kind is "not a JSON object".
    if any(tuple(e["loc"]) == ("body",) and e["type"] != "value_error" for e in errors):
        if not is_json_type(content_type):
            media = (content_type or "").split(";", 1)[0].strip()
            return UnsupportedMediaType(f"send the body as application/json, not {media!r}")
        return BadRequest("the request body must be a JSON object sent as application/json")
    problems = []
    for e in errors:
        loc = ".".join(str(p) for p in e["loc"] if p != "body") or "body"
        problems.append({"field": loc, "message": e["msg"], "type": e["type"]})
    summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems)
    first = problems[0]["field"] if problems else None
    return ValidationFailed(f"invalid request: {summary}", errors=problems, param=first)


def allowed_methods(scope: Scope) -> str:
    """Every method some documented route serves on this path (the router names only the
    first route's). A concrete path shadows the templated ones it matches, as OpenAPI reads
    it: ``/v1/flags/evaluate`` is not ``/v1/flags/{flag_key}``."""
    matching = [
        ctx
        for ctx in iter_route_contexts(scope["app"].routes)
        if ctx.path
        and ctx.methods
        and getattr(ctx.original_route, "include_in_schema", True)
        and compile_path(ctx.path)[0].match(scope["path"])
    ]
    concrete = [ctx for ctx in matching if "{" not in (ctx.path or "")]
    methods: set[str] = set()
    for ctx in concrete or matching:
        methods |= set(ctx.methods or ())
    return ", ".join(sorted(methods - {"HEAD"}))


def http_error(exc: StarletteHTTPException, scope: Scope) -> MeshgateError:
    if exc.status_code == 404:
        return NotFound(f"no route {scope['method']} {scope['path']}")
    if exc.status_code == 405:
        allowed = allowed_methods(scope) if "app" in scope else ""
        if not allowed and exc.headers:
            allowed = exc.headers.get("Allow", "")
        return MethodNotAllowed(
            f"{scope['method']} is not allowed on {scope['path']}; allowed: {allowed}",
            headers={"Allow": allowed},
        )
    error = MeshgateError(str(exc.detail))
    error.status = exc.status_code  # type: ignore[misc]
    return error


def install(app: FastAPI) -> None:
    """Route every error the app can raise through :func:`render`."""

    def respond(request: Request, error: MeshgateError) -> Response:
        status, headers, body = response_parts(error, request.scope)
        response = Response(body, status_code=status)
        response.raw_headers = headers
        return response

    async def on_domain(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, MeshgateError)
        return respond(request, exc)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return respond(request, validation_error(exc, request.headers.get("content-type")))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        return respond(request, http_error(exc, request.scope))

    async def on_crash(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return respond(request, MeshgateError("internal error; see the server log"))

    app.add_exception_handler(MeshgateError, on_domain)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_crash)
