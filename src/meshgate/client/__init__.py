"""The Python SDK of Meshgate: ``Client`` (blocking) and ``AsyncClient`` (asyncio).

    from meshgate.client import Client

    with Client("http://127.0.0.1:8080", api_key="mg_...") as mesh:
        for model in mesh.models.list():
            print(model.name, model.traffic)

Errors are typed (``meshgate.client.errors``), answers are pydantic models
(``meshgate.client.models``), 429 and 503 are retried as ``Retry-After`` asks.
"""

from meshgate.client._async import AsyncClient
from meshgate.client._http import RetryPolicy
from meshgate.client._ops import Page
from meshgate.client._sync import Client
from meshgate.client.errors import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    MeshgateClientError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    RateLimitError,
    ServiceUnavailableError,
    UpstreamError,
    ValidationError,
)

__all__ = [
    "APIConnectionError",
    "APIError",
    "AsyncClient",
    "AuthenticationError",
    "BadRequestError",
    "Client",
    "ConflictError",
    "MeshgateClientError",
    "NotFoundError",
    "Page",
    "PermissionDeniedError",
    "PreconditionFailedError",
    "RateLimitError",
    "RetryPolicy",
    "ServiceUnavailableError",
    "UpstreamError",
    "ValidationError",
]
