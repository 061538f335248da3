"""Rate limits per key and per tenant: requests per minute, and tokens per minute.

Tokens are known only once a model answered, so a request is admitted while the token buckets
are not in debt, and the model service charges what was used through ``charge_tokens``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from meshgate.auth import Principal
from meshgate.core import scope as request_scope
from meshgate.errors import MeshgateError, RateLimited
from meshgate.gateway.problems import send_error
from meshgate.limits import Bucket, Limiter
from meshgate.monitoring.metrics import Metrics

TokenCharger = Callable[[int], Awaitable[None]]


def buckets(p: Principal) -> list[Bucket]:
    # The tenant is the hash tag, so one script touches one Redis Cluster slot.
    t = "{" + p.tenant + "}"
    return [
        Bucket(f"{t}:k:{p.key_id}:rpm", p.rpm),
        Bucket(f"{t}:rpm", p.tenant_rpm),
        Bucket(f"{t}:k:{p.key_id}:tpm", p.tpm, cost=0),
        Bucket(f"{t}:tpm", p.tenant_tpm, cost=0),
    ]


BUCKET_CACHE_LIMIT = 10_000


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, *, limiter: Limiter, metrics: Metrics):
        self.app = app
        self.limiter = limiter
        self.metrics = metrics
        # The key service hands out the same Principal object while the key stays cached, so
        # its buckets are built once per cached principal rather than once per request.
        self._buckets: dict[str, tuple[Principal, list[Bucket]]] = {}

    def _buckets_of(self, principal: Principal) -> list[Bucket]:
        cached = self._buckets.get(principal.key_id)
        if cached is not None and cached[0] is principal:
            return cached[1]
        if len(self._buckets) >= BUCKET_CACHE_LIMIT:
            self._buckets.clear()
        made = buckets(principal)
        self._buckets[principal.key_id] = (principal, made)
        return made

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        principal: Principal | None = request_scope.principal(scope)
        if principal is None:
            await self.app(scope, receive, send)
            return
        checked = self._buckets_of(principal)
        try:
            decision = await self.limiter.check(checked)
        except MeshgateError as exc:
            await send_error(exc, scope, send)
            return
        headers = decision.headers()
        if not decision.allowed:
            self.metrics.rate_limited.labels(principal.tenant).inc()
            await send_error(
                RateLimited(
                    "rate limit exceeded; retry after the time in Retry-After", headers=headers
                ),
                scope,
                send,
            )
            return
        encoded = [(k.encode(), v.encode()) for k, v in headers.items()]

        async def charge(tokens: int) -> None:
            if tokens > 0:
                for bucket in checked[2:]:
                    await self.limiter.charge(
                        Bucket(bucket.key, bucket.limit, bucket.period, cost=tokens)
                    )

        request_scope.set_charge_tokens(scope, charge)

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *encoded]
            await send(message)

        await self.app(scope, receive, send_with_limits)
