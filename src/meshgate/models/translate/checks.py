"""Checks of a chat request that hold whatever the vendor: numbers, tool schemas and input
kinds."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import orjson

from meshgate.errors import BadRequest

IMAGE_PARTS = frozenset({"image_url", "input_image", "image"})

CHAT_INTEGERS = ("max_tokens", "max_completion_tokens", "n", "seed", "top_logprobs")
CHAT_NUMBERS = ("temperature", "top_p", "presence_penalty", "frequency_penalty")


def check_numbers(
    request: dict[str, Any], integers: Sequence[str], numbers: Sequence[str] = ()
) -> None:
    """The named options, when present and not null, are JSON integers or numbers: ``true`` is
    neither (Python would take it as ``1``), and a string is refused here, naming the field,
    instead of by the upstream after the call was made."""
    for name in integers:
        value = request.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise BadRequest(f"'{name}' must be an integer", param=name)
    for name in numbers:
        value = request.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise BadRequest(f"'{name}' must be a number", param=name)


def check_tools(request: dict[str, Any]) -> None:
    """Every function tool's ``parameters`` must be a JSON Schema (checked once per schema)."""
    tools = request.get("tools")
    if tools is None:
        return
    if not isinstance(tools, list):
        raise BadRequest("'tools' must be a list", param="tools")
    for i, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise BadRequest(f"tools[{i}].function.name is required", param=f"tools[{i}].function")
        if "parameters" in fn:
            check_schema(fn["parameters"], f"tools[{i}].function.parameters")


def check_schema(schema: Any, where: str) -> None:
    """A 400 naming ``where`` unless ``schema`` is a JSON Schema."""
    if problem := _schema_problem(orjson.dumps(schema)):
        raise BadRequest(f"{where} is not a JSON Schema: {problem}", param=where)


@functools.lru_cache(maxsize=512)
def _schema_problem(schema: bytes) -> str | None:
    import jsonschema

    parsed = orjson.loads(schema)
    if not isinstance(parsed, dict):
        return "a schema is a JSON object"
    try:
        jsonschema.validators.validator_for(parsed).check_schema(parsed)
    except jsonschema.SchemaError as exc:
        return exc.message
    return None


def check_modalities(request: dict[str, Any], modalities: Sequence[str] | None) -> None:
    """An image part to a model declared text-only is refused, naming the part."""
    if modalities is None or "image" in modalities:
        return
    for i, message in enumerate(request.get("messages") or ()):
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        for j, part in enumerate(content):
            if isinstance(part, dict) and part.get("type") in IMAGE_PARTS:
                where = f"messages[{i}].content[{j}]"
                raise BadRequest(
                    f"{where} is an image, and this model takes text only",
                    code="unsupported_modality",
                    param=where,
                )
