"""The error tree of the platform.

Every domain raises subclasses of :class:`MeshgateError`; the gateway maps them to HTTP in one
place (``meshgate.gateway.problems``). A domain never builds an HTTP response itself.

    MeshgateError
    ├── BadRequest            400  the request is malformed or violates a rule
    │   └── ValidationFailed  422  a field has a wrong type or value
    ├── Unauthenticated       401
    ├── Forbidden             403
    ├── NotFound              404  also for another tenant's resource
    ├── Conflict              409
    ├── PreconditionFailed    412  stale If-Match
    ├── PayloadTooLarge       413
    ├── UnsupportedMediaType  415
    ├── RateLimited           429
    ├── UpstreamError         502  an upstream model server failed
    ├── BackendUnavailable    503  a storage backend does not answer
    └── UpstreamTimeout       504
"""

from __future__ import annotations

from typing import Any, ClassVar


class MeshgateError(Exception):
    """Root of every error the platform raises on purpose."""

    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"
    slug: ClassVar[str] = "internal"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(detail)
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


class BadRequest(MeshgateError):
    status, title, slug = 400, "Bad request", "bad-request"


class ValidationFailed(BadRequest):
    status, title, slug = 422, "Validation failed", "validation"


class Unauthenticated(MeshgateError):
    status, title, slug = 401, "Unauthenticated", "unauthenticated"


class Forbidden(MeshgateError):
    status, title, slug = 403, "Forbidden", "forbidden"


class NotFound(MeshgateError):
    status, title, slug = 404, "Not found", "not-found"


class MethodNotAllowed(MeshgateError):
    status, title, slug = 405, "Method not allowed", "method-not-allowed"


class Conflict(MeshgateError):
    status, title, slug = 409, "Conflict", "conflict"


class PreconditionFailed(MeshgateError):
    status, title, slug = 412, "Precondition failed", "precondition-failed"


class PayloadTooLarge(MeshgateError):
    status, title, slug = 413, "Payload too large", "payload-too-large"


class UnsupportedMediaType(MeshgateError):
    status, title, slug = 415, "Unsupported media type", "unsupported-media-type"


class RateLimited(MeshgateError):
    status, title, slug = 429, "Too many requests", "rate-limited"


class UpstreamError(MeshgateError):
    status, title, slug = 502, "Upstream error", "upstream"


class BackendUnavailable(MeshgateError):
    """Always with ``Retry-After``: the backend is expected back, and the client may retry."""

    status, title, slug = 503, "Backend unavailable", "backend-unavailable"

    def __init__(self, detail: str, *, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(detail, headers={"Retry-After": "1", **(headers or {})}, **extra)


class UpstreamTimeout(MeshgateError):
    status, title, slug = 504, "Upstream timeout", "upstream-timeout"
