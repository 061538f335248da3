"""Request-scope keys: what the middleware and the routes leave on the ASGI scope.

Every key is declared here once, with a typed accessor, so a reader of the scope and its
writer cannot disagree on a name or a type.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from meshgate.auth.principal import Principal
    from meshgate.tracecontext import TraceContext

Scope = MutableMapping[str, Any]

PRINCIPAL = "meshgate.principal"
"""The authenticated caller (set by the auth middleware)."""
REQUEST_ID = "meshgate.request_id"
"""The request id (``x-request-id`` or a new one)."""
TRACE = "meshgate.trace"
"""The W3C trace context of the request."""
MODEL = "meshgate.model"
"""The model a route served, for metrics and spans."""
MODEL_VERSION = "meshgate.model_version"
"""The version that answered."""
CHARGE_TOKENS = "meshgate.charge_tokens"
"""A callable charging model tokens against the caller's token budget, set by the limiter."""


def principal(scope: Scope) -> Principal | None:
    found: Principal | None = scope.get(PRINCIPAL)
    return found


def set_principal(scope: Scope, value: Principal) -> None:
    scope[PRINCIPAL] = value


def request_id(scope: Scope) -> str:
    return str(scope.get(REQUEST_ID, ""))


def set_request_id(scope: Scope, value: str) -> None:
    scope[REQUEST_ID] = value


def trace(scope: Scope) -> TraceContext | None:
    found: TraceContext | None = scope.get(TRACE)
    return found


def set_trace(scope: Scope, value: TraceContext) -> None:
    scope[TRACE] = value


def served_model(scope: Scope) -> tuple[str, str] | None:
    """(model, version) of what the request served, or None."""
    name = scope.get(MODEL)
    if name is None:
        return None
    return str(name), str(scope.get(MODEL_VERSION) or "")


def set_served_model(scope: Scope, model: str, version: str) -> None:
    scope[MODEL] = model
    scope[MODEL_VERSION] = version


def charge_tokens(scope: Scope) -> Any:
    """The token charger the limiter left, or None."""
    return scope.get(CHARGE_TOKENS)


def set_charge_tokens(scope: Scope, charge: Any) -> None:
    scope[CHARGE_TOKENS] = charge
