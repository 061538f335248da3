"""JSON merge patch (RFC 7396) of a profile, with the size limits checked before any write."""

from __future__ import annotations

from typing import Any

import orjson

from meshgate.context.config import ContextConfig
from meshgate.context.model import InvalidContext, Json

SECTIONS = ("attributes", "preferences")


def merge(target: Any, patch: Any) -> Any:
    """RFC 7396: objects merge member by member, ``null`` removes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge(result.get(key), value)
    return result


def check_patch(patch: Any) -> Json:
    """A profile patch is an object whose members are ``attributes`` and ``preferences``."""
    if not isinstance(patch, dict):
        kind = type(patch).__name__ if patch is not None else "null"
        raise InvalidContext(f"a merge patch must be a JSON object, not {kind}", param="body")
    unknown = sorted(set(patch) - set(SECTIONS))
    if unknown:
        raise InvalidContext(
            f"unknown member {unknown[0]!r}: a patch may change only 'attributes' and "
            "'preferences'",
            param=unknown[0],
        )
    for section in SECTIONS:
        value = patch.get(section)
        if value is not None and not isinstance(value, dict):
            raise InvalidContext(f"'{section}' must be an object or null", param=section)
    return patch


def apply_patch(
    attributes: Json, preferences: Json, patch: Json, limits: ContextConfig
) -> tuple[Json, Json]:
    """The new (attributes, preferences); raises naming the first rule broken."""
    check_patch(patch)
    attrs = merge(attributes, patch["attributes"]) if "attributes" in patch else attributes
    prefs = merge(preferences, patch["preferences"]) if "preferences" in patch else preferences
    attrs = attrs if isinstance(attrs, dict) else {}
    prefs = prefs if isinstance(prefs, dict) else {}
    if len(attrs) + len(prefs) > limits.max_keys:
        raise InvalidContext(
            f"a profile holds at most {limits.max_keys} attributes and preferences", param="body"
        )
    for section, values in (("attributes", attrs), ("preferences", prefs)):
        for key, value in values.items():
            size = len(orjson.dumps(value))
            if size > limits.max_value_bytes:
                raise InvalidContext(
                    f"{section}.{key} is {size} bytes as JSON; the limit is "
                    f"{limits.max_value_bytes}",
                    param=f"{section}.{key}",
                )
    total = len(orjson.dumps(attrs)) + len(orjson.dumps(prefs))
    if total > limits.max_profile_bytes:
        raise InvalidContext(
            f"the profile would be {total} bytes as JSON; the limit is {limits.max_profile_bytes}",
            param="body",
        )
    return attrs, prefs
