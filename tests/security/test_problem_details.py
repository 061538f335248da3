"""A 5xx problem detail never names where a backend or upstream lives."""

from __future__ import annotations

import orjson
import pytest

from meshgate.errors import BackendUnavailable, BadRequest, UpstreamError
from meshgate.gateway.problems import render


@pytest.mark.parametrize(
    "message",
    [
        "redis: Error 111 connecting to 10.1.2.3:6379. Connection refused.",
        "cannot reach postgres.internal:5432",
        "NATS at nats://nats-0.nats.svc:4222 is gone",
        "sqlite event log /var/lib/meshgate/data/events.db: disk I/O error",
        "upstream [fd00::12]:8000 reset the connection",
    ],
)
@pytest.mark.parametrize(
    "path", ["/v1/context/users/u", "/v1/chat/completions", "/v2/models/m/infer"]
)
def test_internal_names_never_reach_the_caller(message: str, path: str) -> None:
    for error in (BackendUnavailable(message), UpstreamError(message)):
        _, body = render(error, path, "rid")
        text = orjson.loads(body)
        shown = str(text)
        for secret in ("10.1.2.3", "6379", "postgres.internal", "nats-0", "/var/lib", "fd00::12"):
            assert secret not in shown, (message, shown)
        assert "<internal>" in shown


def test_client_errors_keep_their_detail() -> None:
    _, body = render(BadRequest("url: http://10.0.0.1/x is not allowed"), "/v1/x", None)
    assert "10.0.0.1" in orjson.loads(body)["detail"]
