"""Errors of the model services, all under :class:`meshgate.errors.MeshgateError`.

Retryable                       marker: the upstream may answer if asked again
UpstreamUnavailable   502       connection refused or reset, or a 5xx from the upstream
UpstreamTimedOut      504       the version's timeout passed
CircuitOpen           503       the upstream's breaker is open and no fallback answered
UpstreamRejected      400       the upstream refused the request as malformed (its message)
UpstreamRateLimited   429       the upstream's own rate limit
InvalidInput          400       an input does not match the version's signature
"""

from __future__ import annotations

from meshgate.errors import (
    BackendUnavailable,
    BadRequest,
    MeshgateError,
    RateLimited,
    UpstreamError,
    UpstreamTimeout,
)


class Retryable(MeshgateError):
    """Base of the errors a retry or a fallback may cure (its status comes from the sibling)."""


class UpstreamUnavailable(Retryable, UpstreamError):
    pass


class UpstreamTimedOut(Retryable, UpstreamTimeout):
    pass


class CircuitOpen(Retryable, BackendUnavailable):
    title, slug = "Upstream circuit open", "circuit-open"


class UpstreamRejected(BadRequest):
    pass


class UpstreamRateLimited(RateLimited):
    pass


class InvalidInput(BadRequest):
    pass
