"""Strict JSON request bodies: the one parser every route uses.

JSON as the RFC allows it is wider than what any route means, and the gaps are where a
hostile body turns into a 500 or into data the stores cannot hold. A body is refused (400,
naming the problem) when it:

- is not JSON at all: a syntax error, invalid UTF-8, a lone surrogate escape, ``NaN`` or
  ``Infinity``, a number too large for a double (orjson refuses all of these);
- nests deeper than :data:`MAX_DEPTH` (deeper values could not even be written back out);
- repeats a key in one object (parsers disagree on which one wins);
- holds an integer outside the signed 64-bit range (the stores' integers; orjson would
  silently turn it into a float).

A body that is not declared as JSON is a 415.
"""

from __future__ import annotations

import json
import re
from typing import Any, cast

import orjson
from pydantic import BaseModel, ConfigDict, GetCoreSchemaHandler
from pydantic_core import core_schema

from meshgate.errors import BadRequest, UnsupportedMediaType

MAX_DEPTH = 64
INT64 = (-(2**63), 2**63 - 1)
JSON_TYPES = ("application/json", "application/merge-patch+json")

# The checks below run on the body with every string's content removed (so nothing inside a
# string can look like structure): a few C-level passes, never a Python loop per value, so a
# large numeric tensor costs little more than orjson's own parse.
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
# Digits become "0", the parts of a number that make it a float (".", "e", "E") become "x":
# a run of 19 or more zeros not touching an "x" is an integer that may not fit in 64 bits.
_NUMBER_SHAPE = bytes(
    ord("0") if chr(b).isdigit() and b < 128 else ord("x") if b in b".eE" else ord(" ")
    for b in range(256)
)
_LONG_RUN = b"0" * 19
_SIGNED = re.compile(rb"-?\d+")


class InvalidJson(BadRequest):
    """A body that is not acceptable JSON; ``code`` is ``invalid_json`` on OpenAI routes."""

    def __init__(self, detail: str):
        super().__init__(f"malformed JSON body: {detail}", code="invalid_json")


def is_json_type(content_type: str | None) -> bool:
    """``application/json``, ``application/*+json``, or no declared type at all."""
    if not content_type:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media in JSON_TYPES or (media.startswith("application/") and media.endswith("+json"))


def require_json_type(content_type: str | None) -> None:
    if not is_json_type(content_type):
        media = (content_type or "").split(";", 1)[0].strip()
        raise UnsupportedMediaType(
            f"send the body as application/json, not {media!r}", code="unsupported_media_type"
        )


def without_strings(text: bytes) -> bytes:
    """Valid JSON ``text`` with every string emptied to ``""``.

    Escapes are two characters read left to right, so dropping ``\\\\`` pairs, then
    ``\\"``, leaves only the quotes that open and close strings; every other piece between
    them is a string's content. (Outside strings valid JSON has no backslash.)
    """
    pieces = text.replace(b"\\\\", b"").replace(b'\\"', b"").split(b'"')
    return b'""'.join(pieces[0::2])


def nesting_depth(bare: bytes) -> int:
    """The deepest nesting of arrays and objects in ``bare`` (valid JSON, strings emptied)."""
    level = peak = 0
    for byte in bare.translate(None, _NOT_BRACKETS):
        if byte in b"[{":
            level += 1
            if level > peak:
                peak = level
                if peak > MAX_DEPTH:
                    break
        else:
            level -= 1
    return peak


def check_integers(bare: bytes) -> None:
    shape = bare.translate(_NUMBER_SHAPE)
    at = shape.find(_LONG_RUN)
    while at >= 0:
        start = at
        while start > 0 and shape[start - 1] == 48:  # "0"
            start -= 1
        end = at + len(_LONG_RUN)
        while end < len(shape) and shape[end] == 48:
            end += 1
        before = shape[start - 1] if start else 32
        after = shape[end] if end < len(shape) else 32
        if before != 120 and after != 120:  # "x": a fraction or an exponent, not an integer
            match = _SIGNED.match(bare, start - 1 if bare[start - 1 : start] == b"-" else start)
            text = match.group().decode() if match else "?"
            if match is None or not INT64[0] <= int(text) <= INT64[1]:
                raise InvalidJson(
                    f"the integer {text[:24]}{'...' if len(text) > 24 else ''} is outside the"
                    " signed 64-bit range"
                )
        at = shape.find(_LONG_RUN, end)


def _repeated_key(body: bytes) -> str:
    """The first key that appears twice in one object (slow; only on a refused body)."""
    found: list[str] = []

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in items]
        found.extend(k for i, k in enumerate(keys) if k in keys[:i])
        return dict(items)

    json.loads(body, object_pairs_hook=pairs)
    return found[0] if found else "?"


def parse_json(body: bytes, content_type: str | None = None) -> Any:
    """The value of a JSON request body, or a 400/415 naming what is wrong with it."""
    require_json_type(content_type)
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "infinity" in str(exc):  # a huge integer is named as what it is
            check_integers(without_strings(body))
        raise InvalidJson(str(exc)) from exc
    bare = without_strings(body)
    if nesting_depth(bare) > MAX_DEPTH:
        raise InvalidJson(f"values are nested deeper than {MAX_DEPTH} levels")
    check_integers(bare)
    # Outside strings a colon only ever separates a key from its value: fewer colons in the
    # parsed value than in the body means an object repeated a key (parsers disagree on
    # which one wins, so none is taken).
    if bare.count(b":") != without_strings(orjson.dumps(value)).count(b":"):
        key = _repeated_key(body)
        raise InvalidJson(f"the key {key[:64]!r} appears twice in one object")
    return value


def parse_object(body: bytes, content_type: str | None = None) -> dict[str, Any]:
    value = parse_json(body, content_type)
    if not isinstance(value, dict):
        raise BadRequest("the body must be a JSON object", code="invalid_json")
    return value


def _not_a_boolean(value: object) -> object:
    if isinstance(value, bool):
        raise ValueError("a number, not a boolean")
    return value


# Keys of a core schema that hold something other than a schema to validate with.
_NOT_VALIDATING = frozenset({"metadata", "serialization", "default", "ref", "cls"})


def _refuse_booleans(schema: Any) -> Any:
    """``schema`` (a core schema) with every integer and float check preceded by one that
    refuses a boolean. Bounds stay on the inner check, so they still reach the document."""
    if isinstance(schema, list):
        return [_refuse_booleans(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    kind = schema.get("type")
    if kind in ("int", "float"):
        return core_schema.no_info_before_validator_function(_not_a_boolean, schema)
    if kind == "function-before" and schema["function"].get("function") is _not_a_boolean:
        return schema  # a nested request model, already done by its own class
    return {k: v if k in _NOT_VALIDATING else _refuse_booleans(v) for k, v in schema.items()}


class RequestBody(BaseModel):
    """The base of every request body model (and of the models inside one).

    Unknown fields are refused, and so is JSON's ``true`` or ``false`` where an integer or a
    number is declared: the framework's lax mode would take ``true`` as ``1`` (and ``1.0``),
    so a typo'd body would change a limit, a weight or a price instead of being a 422. This
    holds at any depth (``list[int]``, ``dict[str, int]``, ``int | None``), while ``3.0``
    stays the integer JSON Schema says it is and the bounds stay in the document.
    """

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: type[BaseModel], handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return cast(core_schema.CoreSchema, _refuse_booleans(handler(source)))
