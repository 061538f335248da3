"""The composition root: settings in, a wired ASGI app out.

:func:`build_services` constructs every service with its collaborators as constructor
arguments, in one visible order (nothing does I/O yet); the app's lifespan starts them in
that order and closes them in reverse. Routes reach them through
``meshgate.core.state.service_of``. Nothing here runs at import time.

When PostgreSQL does not answer at start-up, the lifespan does not fail: the listener serves
while ``meshgate.startup`` retries in the background (liveness 200, readiness and every other
request 503), and the node serves once the store answers.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI

from meshgate import __version__, console
from meshgate.auth import KeyService
from meshgate.auth.oidc_config import oidc_verifier
from meshgate.config import Settings, load_settings
from meshgate.context import module as context_module
from meshgate.context.service import ContextService
from meshgate.core.health import Readiness
from meshgate.core.state import provide
from meshgate.delivery import module as delivery_module
from meshgate.delivery.flag_service import FlagService
from meshgate.delivery.rollout_controller import RolloutController
from meshgate.delivery.rollout_service import RolloutService
from meshgate.economics import module as economics_module
from meshgate.economics.service import EconomicsService
from meshgate.errors import BackendUnavailable
from meshgate.events import module as events_module
from meshgate.events.amqp import AmqpPublisher
from meshgate.events.groups import LeasedGroup
from meshgate.events.leases import SqlLeases
from meshgate.events.ports import EventPublisher
from meshgate.events.service import EventService
from meshgate.events.webhooks import WebhookDispatcher
from meshgate.foundation import Foundation, build_foundation, prepare
from meshgate.gateway import openapi, problems
from meshgate.gateway.fast_routes import FastRoutes
from meshgate.gateway.middleware import idempotency
from meshgate.gateway.middleware.auth import AuthMiddleware
from meshgate.gateway.middleware.body_limit import BodyLimitMiddleware
from meshgate.gateway.middleware.deprecation import DeprecationMiddleware
from meshgate.gateway.middleware.fields import FieldsMiddleware
from meshgate.gateway.middleware.observe import ObserveMiddleware
from meshgate.gateway.middleware.rate_limit import RateLimitMiddleware
from meshgate.gateway.middleware.request_context import RequestContextMiddleware
from meshgate.gateway.middleware.strict_json import StrictJsonMiddleware
from meshgate.gateway.routes import admin, graphql, ops
from meshgate.gateway.routes.mcp import McpSurface
from meshgate.governance import module as governance_module
from meshgate.governance.audit import AuditService
from meshgate.governance.ports import AuditRecorder
from meshgate.limits import Limiter, open_limiter
from meshgate.models import module as models_module
from meshgate.models.artifacts import ArtifactStore
from meshgate.models.service import ModelService
from meshgate.models.traffic_owner import TrafficOwner
from meshgate.monitoring import module as monitoring_module
from meshgate.monitoring.logs import flush_logs, setup_logging
from meshgate.monitoring.metrics import Metrics
from meshgate.monitoring.runtime import RuntimeProbe
from meshgate.monitoring.service import MonitoringService
from meshgate.security import routes as security_routes
from meshgate.security.egress import EgressPolicy
from meshgate.sql import SqlStore
from meshgate.startup import FIRST_ATTEMPT_SECONDS, Startup, StartupGate
from meshgate.training import module as training_module
from meshgate.training.runner import JobRunner
from meshgate.training.service import TrainingService

log = logging.getLogger("meshgate")


@dataclass(frozen=True)
class Services:
    """Every service of one process, built by :func:`build_services`."""

    base: Foundation
    limiter: Limiter
    egress: EgressPolicy
    metrics: Metrics
    runtime: RuntimeProbe
    readiness: Readiness
    leases: SqlLeases
    """Once-per-cluster work holds a lease here (alert evaluation)."""
    events: EventService
    webhooks: WebhookDispatcher
    amqp: AmqpPublisher | None
    """The events published to an AMQP exchange (one runner a cluster), when configured."""
    audit: AuditService
    audit_references: LeasedGroup
    """The consumer group referencing predictions in the audit trail (one runner a cluster)."""
    context: ContextService
    artifacts: ArtifactStore
    economics: EconomicsService
    spend: economics_module.SpendConsumer
    """The spend ledger's consumer group (one runner a cluster, under a lease)."""
    models: ModelService
    monitoring: MonitoringService
    flags: FlagService
    training: TrainingService
    jobs: JobRunner
    """Runs dataset builds and training jobs where its lease is held (one per cluster)."""
    rollouts: RolloutService
    rollout_controller: RolloutController
    """Once per cluster (a lease): advances, holds or rolls back running rollouts."""

    @property
    def settings(self) -> Settings:
        return self.base.settings

    @property
    def sql(self) -> SqlStore:
        return self.base.sql

    @property
    def keys(self) -> KeyService:
        return self.base.keys


def build_services(settings: Settings, *, clock: Callable[[], float] | None = None) -> Services:
    """Every service, constructed in dependency order; ``clock`` is the Context Mesh's wall
    clock (tests move it to expire sessions)."""
    base = build_foundation(settings)
    sql, pepper = base.sql, base.pepper
    limiter = open_limiter(
        settings.limiter_backend_url,
        namespace=settings.namespace,
        timeout=settings.backend_timeout_seconds,
    )
    egress = EgressPolicy(settings.security.egress_allow)
    metrics = Metrics()
    readiness = Readiness()
    leases = SqlLeases(sql)
    events = events_module.build_events(settings, sql, pepper)
    webhooks = events_module.build_webhooks(settings, sql, pepper, events, egress)
    amqp = events_module.build_amqp(
        settings, events, leases, registry=metrics.registry, lag=metrics.event_lag
    )
    audit = governance_module.build_audit(settings, sql)
    audit_references = governance_module.build_prediction_references(events, leases, audit)
    economics = economics_module.build_economics(
        settings, sql, metrics, events=events, audit=audit, pseudonyms=events
    )
    context = context_module.build_context(
        settings,
        events=events,
        audit=audit,
        registered=models_module.registered_context_policies(sql),
        clock=clock,
        erasure=[economics],
    )
    spend = economics_module.SpendConsumer(events, leases, economics.spend)
    artifacts = models_module.artifact_store(settings, sql)
    flags = delivery_module.build_flags(sql, events=events, audit=audit, context=context)
    models = models_module.build_models(
        settings,
        sql,
        artifacts,
        credentials=base.credentials,
        egress=egress,
        events=events,
        audit=audit,
        context=context,
        on_breaker=metrics.set_breaker,
        gate=economics.gate,
        choose_model=flags.choose_model,
    )
    monitoring = monitoring_module.build_monitoring(
        settings, sql, metrics, events=events, readiness=readiness, leases=leases
    )
    rollouts, rollout_controller = delivery_module.build_rollouts(
        sql, events=events, audit=audit, models=models, leases=leases
    )
    training, jobs = training_module.build_training(
        settings,
        sql,
        events=events,
        audit=audit,
        models=models,
        artifacts=artifacts,
        leases=leases,
        rollouts=rollouts,
    )
    readiness.add("sql", sql.ping)
    if settings.limiter_backend_url != "memory://":
        readiness.add("limiter", limiter.ping)
    readiness.add("events", events.log.ping)
    readiness.add("context", context.store.ping)
    return Services(
        base=base,
        limiter=limiter,
        egress=egress,
        metrics=metrics,
        runtime=RuntimeProbe(metrics.registry),
        readiness=readiness,
        leases=leases,
        events=events,
        webhooks=webhooks,
        amqp=amqp,
        audit=audit,
        audit_references=audit_references,
        context=context,
        artifacts=artifacts,
        economics=economics,
        spend=spend,
        models=models,
        monitoring=monitoring,
        flags=flags,
        training=training,
        jobs=jobs,
        rollouts=rollouts,
        rollout_controller=rollout_controller,
    )


STARTUP_PATIENCE_SECONDS = 30.0
"""How long a start-up statement may wait: nodes starting together wait on each other's
migrations, and a busy database answers slowly (requests keep backend_timeout_seconds)."""


SHUTDOWN_WAIT_SECONDS = 0.25
"""How long a statement may wait while the process closes: several services write their last
state (snapshots, leases given back), and a hanging database must not hold SIGTERM."""


async def open_store(s: Services) -> None:
    """Start the SQL store and bring its schema up to date; the store is closed again if
    either fails, so that a start-up waiting for PostgreSQL can try again."""
    # Bounded by backend_timeout_seconds (or the first attempt's patience): a store that is
    # down fails this within seconds, where the migrations below may wait for other nodes.
    await s.sql.start()
    try:
        with s.sql.patient(STARTUP_PATIENCE_SECONDS):
            await prepare(s.base)
    except BaseException:
        await s.sql.close()
        raise


async def start_rest(s: Services, stack: AsyncExitStack) -> None:
    """Start every other service in order, once (services are not made to start twice);
    ``stack`` closes what started, in reverse."""
    stack.push_async_callback(s.sql.close)
    with s.sql.patient(STARTUP_PATIENCE_SECONDS):
        await _start_each(s, stack)


async def _start_each(s: Services, stack: AsyncExitStack) -> None:
    await s.limiter.start()
    stack.push_async_callback(s.limiter.close)
    await s.events.start()
    stack.push_async_callback(s.events.close)
    await s.webhooks.start()
    stack.push_async_callback(s.webhooks.close)
    if s.amqp is not None:
        await s.amqp.start()
        stack.push_async_callback(s.amqp.close)
    await s.audit.start()
    stack.push_async_callback(s.audit.close)
    s.audit_references.start()
    stack.push_async_callback(s.audit_references.close)
    await s.context.start()
    stack.push_async_callback(s.context.close)
    stack.push_async_callback(s.models.close)
    declared = await models_module.declared_models(s.settings, s.artifacts)
    await s.models.start(declared)
    s.training.declare_trainers(training_module.trainers_of(declared))
    await s.monitoring.start()
    stack.push_async_callback(s.monitoring.close)
    stack.push_async_callback(s.economics.close)
    await s.spend.start()
    stack.push_async_callback(s.spend.close)
    await s.flags.start()
    stack.push_async_callback(s.flags.close)
    await s.jobs.start()
    stack.push_async_callback(s.jobs.close)
    await s.rollout_controller.start()
    stack.push_async_callback(s.rollout_controller.close)
    s.runtime.start()
    stack.push_async_callback(s.runtime.close)
    # What start-up built lives as long as the process: moved out of the collector's reach,
    # it is never scanned again by a full collection (shorter pauses in the request tail).
    gc.freeze()


def create_app(settings: Settings, *, clock: Callable[[], float] | None = None) -> FastAPI:
    services = build_services(settings, clock=clock)
    mcp = McpSurface()
    startup = Startup()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            # uvicorn logs its last lines after this; write them directly so none is lost.
            stack.callback(flush_logs)

            async def rest() -> None:
                await start_rest(services, stack)
                await mcp.start()
                stack.push_async_callback(mcp.close)

            try:
                with services.sql.patient(FIRST_ATTEMPT_SECONDS):
                    await open_store(services)
            except BackendUnavailable as exc:
                if services.sql.dialect != "postgresql":
                    raise  # an embedded store that fails is not waited for
                # PostgreSQL is down: serve (liveness, readiness, 503s) and keep trying.
                startup.wait(exc, services.readiness, lambda: open_store(services), rest)
            else:
                await rest()
            yield
            await startup.stop()
            services.sql.hurry(SHUTDOWN_WAIT_SECONDS)

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
    app.state.services = services
    provide(
        app,
        [
            services.settings,
            services.settings.events,
            services.settings.monitoring,
            services.settings.limits,
            services.settings.security.graphql,
            services.keys,
            services.base.credentials,
            services.metrics,
            services.readiness,
            services.events,
            services.webhooks,
            services.audit,
            services.context,
            services.economics,
            services.models,
            services.monitoring,
            services.flags,
            services.training,
            services.rollouts,
        ],
        ports={
            AuditRecorder: services.audit,
            EventPublisher: services.events,
            Limiter: services.limiter,
            TrafficOwner: services.rollouts,
        },
    )
    problems.install(app)
    idempotency.document(app)
    openapi.install(app, settings.public_paths)
    app.include_router(ops.router)
    app.include_router(admin.router)
    app.include_router(security_routes.router)
    app.include_router(graphql.build_router())
    app.include_router(mcp.router())
    app.include_router(console.router())
    for router in (
        events_module.ROUTERS
        + governance_module.ROUTERS
        + context_module.ROUTERS
        + models_module.ROUTERS
        + monitoring_module.ROUTERS
        + economics_module.ROUTERS
        + delivery_module.ROUTERS
        + training_module.ROUTERS
    ):
        app.include_router(router)
    hot = list(ops.HOT) + context_module.HOT_ROUTES + models_module.HOT_ROUTES
    # Added innermost first: a request meets them in the reverse order.
    app.add_middleware(StrictJsonMiddleware)
    app.add_middleware(FastRoutes, routes=hot)
    app.add_middleware(idempotency.IdempotencyMiddleware, sql=services.sql)
    app.add_middleware(RateLimitMiddleware, limiter=services.limiter, metrics=services.metrics)
    app.add_middleware(
        AuthMiddleware,
        keys=services.keys,
        public_paths=[*settings.public_paths, *console.public_paths()],
        metrics_token=(
            settings.security.metrics_token.get_secret_value()
            if settings.security.metrics_token
            else None
        ),
        oidc=oidc_verifier(settings.oidc, settings.limits, services.sql),
    )
    # Outside everything that needs the SQL store, inside what observes requests.
    app.add_middleware(StartupGate, startup=startup)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        routes=training_module.body_limits(settings.training),
    )
    app.add_middleware(FieldsMiddleware)
    app.add_middleware(DeprecationMiddleware)
    app.add_middleware(
        ObserveMiddleware, metrics=services.metrics, access_log=settings.monitoring.access_log
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
    setup_logging(
        settings.log_level,
        json_lines=settings.monitoring.json_logs,
        levels=settings.monitoring.log_levels,
    )
    return create_app(settings)
