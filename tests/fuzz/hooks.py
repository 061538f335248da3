"""Schemathesis hooks of the fuzz run (loaded through SCHEMATHESIS_HOOKS).

Every JSON body is refused when it holds an integer outside 64 bits (meshgate.strictjson),
anywhere, free-form values included, a rule JSON Schema cannot state for a free-form value.
Generated bodies that break it are left out here; tests/gateway/test_hostile_input.py sends
such bodies on purpose and checks the 400.
"""

from __future__ import annotations

import itertools
from typing import Any

import schemathesis

LOW, HIGH = -(2**63), 2**63 - 1
KEYS = itertools.count()


def fits_64_bits(value: Any) -> bool:
    if isinstance(value, bool):
        return True
    if isinstance(value, int):
        return LOW <= value <= HIGH
    if isinstance(value, dict):
        return all(fits_64_bits(v) for v in value.values())
    if isinstance(value, list):
        return all(fits_64_bits(v) for v in value)
    return True


@schemathesis.hook
def filter_body(ctx: Any, body: Any) -> bool:
    return fits_64_bits(body)


@schemathesis.hook
def map_headers(ctx: Any, headers: dict[str, Any] | None) -> dict[str, Any] | None:
    """Each generated request gets an Idempotency-Key of its own.

    A key names one request: reused for another body it is refused with 422, by design
    (gateway/middleware/idempotency.py; tests/gateway/test_idempotency.py covers reuse). A
    generator that draws "0" for every key would only ever test that refusal.
    """
    if headers and "Idempotency-Key" in headers:
        headers["Idempotency-Key"] = f"fuzz-{next(KEYS)}"
    return headers
