"""The composition root: settings in, a wired ASGI app out.

Backends are picked from URLs in the settings; domains are plugged in as modules (events
first, since the others publish to it). Nothing here runs at import time.
"""

from __future__ import annotations

import logging
import os
import secrets
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from meshgate import __version__
from meshgate.auth import KeyService, Limits
from meshgate.auth.keys import MIGRATIONS as AUTH_MIGRATIONS
from meshgate.auth.oidc_config import oidc_verifier
from meshgate.config import Settings, load_settings
from meshgate.events.sealing import Sealer
from meshgate.gateway import problems
from meshgate.gateway.fast_routes import FastRoutes
from meshgate.gateway.middleware import idempotency
from meshgate.gateway.middleware.auth import AuthMiddleware
from meshgate.gateway.middleware.body_limit import BodyLimitMiddleware
from meshgate.gateway.middleware.deprecation import DeprecationMiddleware
from meshgate.gateway.middleware.fields import FieldsMiddleware
from meshgate.gateway.middleware.observe import ObserveMiddleware
from meshgate.gateway.middleware.rate_limit import RateLimitMiddleware
from meshgate.gateway.middleware.request_context import RequestContextMiddleware
from meshgate.gateway.routes import admin, graphql, ops
from meshgate.limits import open_limiter
from meshgate.monitoring.logs import setup_logging
from meshgate.monitoring.metrics import Metrics
from meshgate.platform import DomainModule, Platform
from meshgate.security import routes as security_routes
from meshgate.security.credentials import MIGRATIONS as CREDENTIAL_MIGRATIONS
from meshgate.security.credentials import CredentialVault
from meshgate.security.egress import EgressPolicy
from meshgate.sql import migrate, open_sql_store

log = logging.getLogger("meshgate")
ROOT_TENANT = "default"


def default_modules() -> list[DomainModule]:
    """Every domain, in start order: events first, since the others publish to it."""
    from meshgate.context.module import ContextModule
    from meshgate.economics.module import EconomicsModule
    from meshgate.events.module import EventsModule
    from meshgate.governance.module import GovernanceModule
    from meshgate.models.module import ModelsModule
    from meshgate.monitoring.module import MonitoringModule

    return [
        EventsModule(),
        GovernanceModule(),
        ContextModule(),
        ModelsModule(),
        MonitoringModule(),
        EconomicsModule(),
    ]


def load_pepper(settings: Settings) -> bytes:
    if settings.key_pepper is not None:
        return settings.key_pepper.get_secret_value().encode()
    path = Path(settings.data_dir) / "key_pepper"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
    return path.read_text().strip().encode()


def build_platform(settings: Settings) -> Platform:
    timeout = settings.backend_timeout_seconds
    sql = open_sql_store(settings.sql_url, timeout=timeout)
    lim = settings.limits
    pepper = load_pepper(settings)
    keys = KeyService(
        sql,
        pepper=pepper,
        limits=Limits(lim.key_rpm, lim.key_tpm, lim.tenant_rpm, lim.tenant_tpm),
        root_tenant=ROOT_TENANT,
        cache_ttl=settings.auth_cache_ttl_seconds,
    )
    platform = Platform(
        settings=settings,
        sql=sql,
        limiter=open_limiter(
            settings.limiter_backend_url, namespace=settings.namespace, timeout=timeout
        ),
        keys=keys,
        metrics=Metrics(),
        credentials=CredentialVault(
            sql,
            Sealer(pepper, "upstream-credentials"),
            env_prefixes=settings.security.credential_env_prefixes,
        ),
        egress=EgressPolicy(settings.security.egress_allow),
    )
    platform.checks["sql"] = sql.ping
    if settings.limiter_backend_url != "memory://":
        platform.checks["limiter"] = platform.limiter.ping
    return platform


async def prepare(platform: Platform, modules: list[DomainModule]) -> None:
    """Migrate the schema and make the bootstrap admin key; prints a generated key once."""
    domains = [m for mod in modules for m in mod.migrations]
    shared = AUTH_MIGRATIONS + CREDENTIAL_MIGRATIONS + idempotency.MIGRATIONS
    await migrate(platform.sql, shared + domains)
    await platform.credentials.declare(platform.settings.security.credentials)
    admin_key = platform.settings.admin_key
    generated = await platform.keys.ensure_bootstrap(
        admin_key.get_secret_value() if admin_key else None
    )
    if generated:
        print(
            "\n  Meshgate created a bootstrap admin key. It is shown this once; keep it:\n\n"
            f"    {generated}\n\n  (set MESHGATE_ADMIN_KEY to choose your own)\n",
            file=sys.stderr,
            flush=True,
        )


def create_app(settings: Settings, *, modules: list[DomainModule] | None = None) -> FastAPI:
    mods = default_modules() if modules is None else modules
    platform = build_platform(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await platform.sql.start()
        started: list[DomainModule] = []
        try:
            await platform.limiter.start()
            await prepare(platform, mods)
            for mod in mods:
                await mod.start(platform)
                started.append(mod)
            yield
        finally:
            for mod in reversed(started):
                await mod.close()
            await platform.limiter.close()
            await platform.sql.close()

    app = FastAPI(
        title="Meshgate",
        version=__version__,
        description="The single point of entry to every AI service.",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
        # Tracing and metrics are the platform's own (monitoring/): the framework's built-in
        # telemetry would look up the global providers on every request.
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.platform = platform
    problems.install(app)
    idempotency.document(app)
    app.include_router(ops.router)
    app.include_router(admin.router)
    app.include_router(security_routes.router)
    app.include_router(graphql.build_router())
    for mod in mods:
        for router in mod.routers():
            app.include_router(router)
    hot = list(ops.HOT)
    for mod in mods:
        hot += mod.hot_routes() if hasattr(mod, "hot_routes") else []
    # Added innermost first: a request meets them in the reverse order.
    app.add_middleware(FastRoutes, routes=hot)
    app.add_middleware(idempotency.IdempotencyMiddleware, sql=platform.sql)
    app.add_middleware(RateLimitMiddleware, limiter=platform.limiter)
    app.add_middleware(
        AuthMiddleware,
        keys=platform.keys,
        public_paths=settings.public_paths,
        oidc=oidc_verifier(settings.oidc, settings.limits, platform.sql),
    )
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(FieldsMiddleware)
    app.add_middleware(DeprecationMiddleware)
    app.add_middleware(
        ObserveMiddleware, metrics=platform.metrics, access_log=settings.monitoring.access_log
    )
    if settings.monitoring.otlp_endpoint:  # off: not even installed
        from meshgate.gateway.middleware.tracing import TracingMiddleware
        from meshgate.monitoring.tracing import Tracing

        app.add_middleware(TracingMiddleware, tracing=Tracing(settings.monitoring))
    app.add_middleware(RequestContextMiddleware)
    return app


def app_from_env() -> FastAPI:
    """uvicorn factory for ``meshgate serve``: every worker reads the same settings."""
    settings = load_settings()
    setup_logging(settings.log_level, json_lines=settings.monitoring.json_logs)
    return create_app(settings)
