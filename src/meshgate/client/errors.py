"""The SDK's error tree, built from the server's problem+json answers.

    MeshgateClientError
    ├── APIConnectionError        the server could not be reached (after the retries)
    └── APIError                  the server answered with an error status
        ├── BadRequestError       400
        │   └── ValidationError   422
        ├── AuthenticationError   401
        ├── PermissionDeniedError 403
        ├── NotFoundError         404
        ├── ConflictError         409
        ├── PreconditionFailedError 412
        ├── RateLimitError        429
        ├── UpstreamError         502, 504
        └── ServiceUnavailableError 503

Every ``APIError`` keeps the problem document: ``status``, ``title``, ``detail``, ``type``,
``request_id`` and any extension member in ``problem``.
"""

from __future__ import annotations

from typing import Any

import httpx


class MeshgateClientError(Exception):
    """Root of every error the SDK raises."""


class APIConnectionError(MeshgateClientError):
    """The server could not be reached."""


class APIError(MeshgateClientError):
    """The server answered with an error status."""

    def __init__(self, status: int, problem: dict[str, Any], headers: httpx.Headers | None = None):
        self.status = status
        self.problem = problem
        self.title = str(problem.get("title", ""))
        self.detail = str(problem.get("detail", ""))
        self.type = str(problem.get("type", "about:blank"))
        self.request_id = problem.get("request_id")
        self.headers = headers or httpx.Headers()
        super().__init__(f"{status} {self.title}: {self.detail}".strip())


class BadRequestError(APIError):
    pass


class ValidationError(BadRequestError):
    pass


class AuthenticationError(APIError):
    pass


class PermissionDeniedError(APIError):
    pass


class NotFoundError(APIError):
    pass


class ConflictError(APIError):
    pass


class PreconditionFailedError(APIError):
    pass


class RateLimitError(APIError):
    pass


class UpstreamError(APIError):
    pass


class ServiceUnavailableError(APIError):
    pass


BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    412: PreconditionFailedError,
    422: ValidationError,
    429: RateLimitError,
    502: UpstreamError,
    503: ServiceUnavailableError,
    504: UpstreamError,
}


def problem_of(response: httpx.Response) -> dict[str, Any]:
    """The problem document, whichever of the server's three error shapes was used."""
    try:
        body = response.json()
    except ValueError:
        return {"status": response.status_code, "detail": response.text[:500]}
    if not isinstance(body, dict):
        return {"status": response.status_code, "detail": str(body)[:500]}
    error = body.get("error")
    if isinstance(error, dict):  # the OpenAI-compatible routes
        return {
            "status": response.status_code,
            "title": error.get("type", ""),
            "detail": error.get("message", ""),
            **{k: v for k, v in error.items() if k not in ("type", "message")},
        }
    if isinstance(error, str):  # the V2 routes
        return {"status": response.status_code, "detail": error}
    return body


def error_for(response: httpx.Response) -> APIError:
    status = response.status_code
    kind = BY_STATUS.get(status)
    if kind is None:
        kind = BadRequestError if status < 500 else APIError
    return kind(status, problem_of(response), response.headers)
