"""OpenTelemetry tracing: spans exported over OTLP/HTTP, off unless an endpoint is set.

When tracing is off nothing here runs on a request: the gateway does not install its tracing
middleware, and :func:`span` returns one shared no-op context manager after a single
context-variable read. Other domains wrap their upstream and backend calls with it::

    with span("upstream chat", kind="client", **{"meshgate.model": name}):
        headers = scope["meshgate.trace"].outbound_headers()  # carries this span's id
        ...

Each app owns its tracer provider (the global OpenTelemetry provider is never set), and the
tracer of the request being served travels in a context variable, so tasks started while
serving it (shadow calls, event handlers) continue its trace.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any, Literal

from opentelemetry import trace
from opentelemetry.context import Context, attach, detach
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)

from meshgate import __version__
from meshgate.monitoring.config import MonitoringConfig
from meshgate.tracecontext import TraceContext

CURRENT_TRACER: ContextVar[trace.Tracer | None] = ContextVar("meshgate_tracer", default=None)
_ROOT_TRACE_ID: ContextVar[int] = ContextVar("meshgate_root_trace_id", default=0)
_NOOP: contextlib.nullcontext[None] = contextlib.nullcontext()
KINDS = {
    "internal": SpanKind.INTERNAL,
    "client": SpanKind.CLIENT,
    "producer": SpanKind.PRODUCER,
    "consumer": SpanKind.CONSUMER,
}


class _RequestTraceIds(IdGenerator):
    """A new trace takes the id the gateway already gave the request (and its log lines)."""

    def generate_span_id(self) -> int:
        return random.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return _ROOT_TRACE_ID.get() or random.getrandbits(128) or 1


class Tracing:
    """One tracer provider exporting batches to ``config.otlp_endpoint`` from its own thread."""

    def __init__(self, config: MonitoringConfig, *, instance: str | None = None):
        if not config.otlp_endpoint:
            raise ValueError("tracing needs monitoring.otlp_endpoint")
        attributes = {"service.name": config.service_name, "service.version": __version__}
        if instance:
            attributes["service.instance.id"] = instance
        self.provider = TracerProvider(
            sampler=ParentBased(TraceIdRatioBased(config.trace_sample_ratio)),
            resource=Resource.create(attributes),
            id_generator=_RequestTraceIds(),
        )
        # Imported here: the exporter pulls in protobuf and requests, needed only when on.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=config.otlp_endpoint, timeout=10)
        self.provider.add_span_processor(
            BatchSpanProcessor(exporter, schedule_delay_millis=config.export_delay_ms)
        )
        self.tracer = self.provider.get_tracer("meshgate", __version__)

    def server_context(self, incoming: TraceContext) -> Context:
        """The parent of a request's server span: the caller's span when it sent one."""
        if incoming.parent_id is None:
            return Context()
        parent = SpanContext(
            trace_id=int(incoming.trace_id, 16),
            span_id=int(incoming.parent_id, 16),
            is_remote=True,
            trace_flags=TraceFlags(int(incoming.flags, 16)),
        )
        return trace.set_span_in_context(NonRecordingSpan(parent))

    @contextlib.contextmanager
    def serving(self, incoming: TraceContext) -> Iterator[None]:
        """Make this tracer current, and a new trace reuse the request's trace id."""
        tracer_token = CURRENT_TRACER.set(self.tracer)
        root_token = _ROOT_TRACE_ID.set(int(incoming.trace_id, 16))
        try:
            yield
        finally:
            _ROOT_TRACE_ID.reset(root_token)
            CURRENT_TRACER.reset(tracer_token)

    def force_flush(self, timeout_ms: int = 5000) -> bool:
        return self.provider.force_flush(timeout_ms)

    def shutdown(self) -> None:
        self.provider.shutdown()


def span(
    name: str,
    *,
    kind: Literal["internal", "client", "producer", "consumer"] = "internal",
    **attributes: Any,
) -> contextlib.AbstractContextManager[Any]:
    """A child span of the current one; a shared no-op when tracing is off."""
    tracer = CURRENT_TRACER.get()
    if tracer is None:
        return _NOOP
    return CurrentSpan(tracer, name, kind=KINDS[kind], attributes=attributes)


class CurrentSpan:
    """``tracer.start_as_current_span(...)`` as a plain class: the same span, made current
    while the block runs, an ``Exception`` leaving the block recorded on it with status ERROR,
    ended on exit. The SDK's spelling nests two generator-based context managers, which cost
    more than the span itself on every request."""

    __slots__ = ("_token", "span")

    def __init__(
        self,
        tracer: trace.Tracer,
        name: str,
        *,
        kind: SpanKind,
        attributes: dict[str, Any],
        context: Context | None = None,
    ):
        self.span = tracer.start_span(name, context=context, kind=kind, attributes=attributes)
        self._token: object = None

    def __enter__(self) -> trace.Span:
        self._token = attach(trace.set_span_in_context(self.span))
        return self.span

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        span = self.span
        try:
            detach(self._token)  # type: ignore[arg-type]
            # As the SDK: an Exception, not a BaseException such as a cancellation.
            if isinstance(exc, Exception) and span.is_recording():
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        finally:
            span.end()


class SpanTraceContext(TraceContext):
    """The request's trace context once it has a server span: outbound calls carry the
    current span's id (the client span around the call, or the server span), so upstream
    spans hang under ours in the trace."""

    __slots__ = ()

    def outbound_headers(self) -> dict[str, str]:
        current = trace.get_current_span().get_span_context()
        if not current.is_valid or f"{current.trace_id:032x}" != self.trace_id:
            return super().outbound_headers()
        flags = "01" if current.trace_flags.sampled else "00"
        headers = {"traceparent": f"00-{self.trace_id}-{current.span_id:016x}-{flags}"}
        members = [self.baggage] if self.baggage else []
        members += [f"{k}={v}" for k, v in self.extra_baggage.items()]
        if members:
            headers["baggage"] = ",".join(members)
        return headers


def continued(incoming: TraceContext, server_span: trace.Span) -> SpanTraceContext:
    ctx = server_span.get_span_context()
    return SpanTraceContext(
        incoming.trace_id,
        f"{ctx.span_id:016x}",
        "01" if ctx.trace_flags.sampled else "00",
        incoming.baggage,
        incoming.extra_baggage,
    )
