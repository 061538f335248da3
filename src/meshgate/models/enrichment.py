"""Context enrichment through the Context Mesh, limited to what the model's policy allows.

A chat model gets one system message with the allowed context; a tabular model gets the
inputs its signature marks ``from_context``. Context is optional: without the Context Mesh, a
user or a session, or an allow list, nothing is added.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from meshgate.context.ports import ContextReader, model_consumer
from meshgate.errors import NotFound
from meshgate.models.config import Signature
from meshgate.models.errors import InvalidInput
from meshgate.models.tensors import DTYPES

SYSTEM_PREFIX = "Context about the user, as allowed by this model's context policy:\n"


async def resolve(
    context: ContextReader,
    *,
    tenant: str,
    model: str,
    registered: tuple[str, ...],
    user_id: str | None,
    session_id: str | None,
) -> dict[str, Any]:
    """What the policy book lets ``model`` see; ``registered`` is its ``context_policy``."""
    if user_id is None and session_id is None:
        return {}
    try:
        bundle = await context.resolve_for_consumer(
            tenant=tenant,
            consumer=model_consumer(model),
            registered=registered,
            user_id=user_id,
            session_id=session_id,
        )
    except NotFound:
        return {}
    return bundle if isinstance(bundle, dict) else {}


def fields_of(bundle: dict[str, Any], prefix: str = "", depth: int = 2) -> list[str]:
    """The dotted paths present in a bundle (for the prediction event), two levels deep."""
    paths = []
    for key, value in bundle.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value and depth > 1:
            paths += fields_of(value, path + ".", depth - 1)
        elif value not in (None, {}, []):
            paths.append(path)
    return sorted(paths)


def with_system_message(request: dict[str, Any], bundle: dict[str, Any]) -> bool:
    """Puts the context first in ``request["messages"]``; False when there is nothing to add."""
    messages = request.get("messages")
    if not bundle or not isinstance(messages, list):
        return False
    text = SYSTEM_PREFIX + orjson.dumps(bundle, option=orjson.OPT_SORT_KEYS).decode()
    request["messages"] = [{"role": "system", "content": text}, *messages]
    return True


def lookup(bundle: dict[str, Any], path: str) -> Any:
    """``attributes.age`` in the bundle, also when the bundle nests it under ``user``."""
    for root in (bundle, bundle.get("user")):
        node: Any = root
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None:
            return node
    return None


def context_inputs(
    signature: Signature, given: dict[str, np.ndarray], bundle: dict[str, Any]
) -> dict[str, np.ndarray]:
    """The signature's context inputs the caller did not send, one value per row."""
    rows = next((len(a) for a in given.values() if a.ndim), 1)
    added = {}
    for spec in signature.inputs:
        if spec.from_context is None or spec.name in given:
            continue
        value = lookup(bundle, spec.from_context)
        if value is None:
            raise InvalidInput(
                f"input {spec.name!r} comes from the context path {spec.from_context!r}, "
                "which the caller's context does not hold; send it or set it",
                param=spec.name,
            )
        shape = [rows if d == -1 else d for d in spec.shape]
        try:
            column = np.full(shape, value, dtype=DTYPES[spec.datatype])
        except (TypeError, ValueError) as exc:
            raise InvalidInput(
                f"input {spec.name!r}: context value {value!r} is not {spec.datatype}",
                param=spec.name,
            ) from exc
        added[spec.name] = column
    return added
