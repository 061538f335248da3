"""The OpenAPI document as the gateway really answers: the framework's document, completed.

The framework documents each route's success answer and a 422 in its own validation shape.
The gateway answers every error in the shape of the route's family (problems.render), so
each operation gets that shape for every error status it can answer, and a ``default`` for
the rest (a 503 of a stopped backend, a 502 of an upstream). Operations that create a
resource get OpenAPI links to the operations on that resource, so a client (and a stateful
fuzzer) knows which field of the answer names it. Routes added later are covered alike:
nothing here lists routes.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI

from meshgate.gateway.problems import ANTHROPIC_PATHS, OPENAI_PREFIXES

PROBLEM = "application/problem+json"
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer", "minimum": 400, "maximum": 599},
        "detail": {"type": "string"},
        "request_id": {"type": ["string", "null"]},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
    "additionalProperties": True,
}
OPENAI_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "code": {"type": ["string", "null"]},
                "param": {"type": ["string", "null"]},
            },
        }
    },
}
ANTHROPIC_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "error"],
    "properties": {
        "type": {"const": "error"},
        "error": {
            "type": "object",
            "required": ["type", "message"],
            "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
        },
    },
}
V2_ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}},
}
ERRORS = {
    "400": "The request is malformed: the detail names what is wrong.",
    "401": "No API key, or an unknown or revoked one.",
    "403": "The key lacks the scope this operation needs.",
    "404": "No such resource for this key's tenant.",
    "405": "The method is not allowed on this path (the Allow header lists those that are).",
    "413": "The body exceeds the configured limit.",
    "415": "The body is not of a media type this operation reads.",
    "422": "A field has a wrong type or value: the detail and errors name each one.",
    "429": "A rate limit is exhausted; Retry-After says when to try again.",
}
WITHOUT_BODY = ("413", "415")
PARAM = re.compile(r"\{([^}]+)\}")
# Path parameters whose resource answers its identifier as ``id``.
ID_FIELD = frozenset({"key_id", "sub_id"})


def error_content(path: str) -> dict[str, Any]:
    """The error shape of the route's family, as problems.render answers it."""
    if path.startswith(ANTHROPIC_PATHS):
        return {"application/json": {"schema": {"$ref": "#/components/schemas/AnthropicError"}}}
    if path.startswith(OPENAI_PREFIXES):
        return {"application/json": {"schema": {"$ref": "#/components/schemas/OpenAIError"}}}
    if path == "/v2" or path.startswith("/v2/"):
        return {"application/json": {"schema": {"$ref": "#/components/schemas/V2Error"}}}
    return {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}


def complete_errors(path: str, operation: dict[str, Any], public: bool) -> None:
    responses = operation.setdefault("responses", {})
    content = error_content(path)
    for status, description in ERRORS.items():
        if public and status in ("401", "403"):
            continue
        if status in WITHOUT_BODY and "requestBody" not in operation:
            continue
        responses.setdefault(status, {"description": description})
    for status, response in responses.items():
        if status == "default" or int(status) >= 400:
            response["content"] = content
    responses["default"] = {
        "description": "Any other error (e.g. 502/504 from an upstream, 503 while a backend"
        " is down), in the same shape.",
        "content": content,
    }


def path_parameters(path: str, operation: dict[str, Any]) -> None:
    """Declare every ``{param}`` of the path (routes reading the raw request have none)."""
    declared = {p["name"] for p in operation.get("parameters", []) if p.get("in") == "path"}
    for name in PARAM.findall(path):
        if name not in declared:
            operation.setdefault("parameters", []).append(
                {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            )


def not_null(operation: dict[str, Any]) -> None:
    """A parameter is absent or a string on the wire, never null: ``X | None`` is ``X``.

    The framework documents an optional parameter as ``anyOf: [X, null]``, which tells a
    client (and a fuzzer) that the text ``null`` is a valid value, which the route refuses.
    """
    for parameter in operation.get("parameters", []):
        schema = parameter.get("schema", {})
        branches = schema.get("anyOf")
        if not isinstance(branches, list):
            continue
        kept = [b for b in branches if b != {"type": "null"}]
        if len(kept) == 1 and len(kept) < len(branches):
            rest = {k: v for k, v in schema.items() if k != "anyOf"}
            parameter["schema"] = {**kept[0], **rest}


def body_properties(operation: dict[str, Any], schemas: dict[str, Any]) -> set[str]:
    content = operation.get("requestBody", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema", {})
    ref = schema.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        schema = schemas.get(ref.rsplit("/", 1)[1], {})
    return set(schema.get("properties", {}))


def id_source(param: str, sent: set[str]) -> str:
    if param in sent:
        return f"$request.body#/{param}"
    if param.endswith("_id") and param not in ID_FIELD:
        return f"$response.body#/{param}"
    return "$response.body#/id"


def add_links(paths: dict[str, Any], schemas: dict[str, Any]) -> None:
    """A POST to a collection links to the operations on ``collection/{param}``.

    The value comes from the request body when the client named the resource itself
    (``name``), else from the answer: the field named like the parameter, or ``id``.
    """
    for path, item in paths.items():
        create = item.get("post")
        if create is None:
            continue
        created = next((r for s, r in create["responses"].items() if s[0] == "2"), None)
        if created is None:
            continue
        sent = body_properties(create, schemas)
        for target, target_item in paths.items():
            rest = target[len(path) :]
            if not rest.startswith("/{") or rest.count("/") != 1 or not rest.endswith("}"):
                continue
            param = rest[2:-1]
            for method, operation in target_item.items():
                if method in ("get", "put", "patch", "delete"):
                    created.setdefault("links", {})[operation["operationId"]] = {
                        "operationId": operation["operationId"],
                        "parameters": {param: id_source(param, sent)},
                    }


def complete(doc: dict[str, Any], public_paths: list[str]) -> dict[str, Any]:
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas["Problem"] = PROBLEM_SCHEMA
    schemas["OpenAIError"] = OPENAI_ERROR_SCHEMA
    schemas["V2Error"] = V2_ERROR_SCHEMA
    schemas["AnthropicError"] = ANTHROPIC_ERROR_SCHEMA
    for path, item in doc["paths"].items():
        for operation in item.values():
            path_parameters(path, operation)
            not_null(operation)
            complete_errors(path, operation, public=path in public_paths)
    add_links(doc["paths"], schemas)
    return doc


def install(app: FastAPI, public_paths: list[str]) -> None:
    """Complete the document that ``app.openapi`` builds (the framework's, and whatever was
    installed before this) once, on its first request."""
    build = app.openapi
    completed: list[dict[str, Any]] = []

    def openapi() -> dict[str, Any]:
        if not completed:
            completed.append(complete(build(), public_paths))
        return completed[0]

    app.openapi = openapi  # type: ignore[method-assign]
