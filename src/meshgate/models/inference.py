"""One inference, start to end: pick a version, add context, call with resilience and
fallback, record the prediction, and leave shadows and token charging to after the response."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

from meshgate.errors import BackendUnavailable, BadRequest, Forbidden, MeshgateError, NotFound
from meshgate.models.errors import CircuitOpen, Retryable, UpstreamTimedOut
from meshgate.models.gate import Gate
from meshgate.models.predictions import (
    Prediction,
    digest,
    new_prediction_id,
    publish_prediction,
)
from meshgate.models.providers.base import Call
from meshgate.models.router import fallback_chain
from meshgate.models.runtime import ModelRuntime, VersionRuntime
from meshgate.monitoring.tracing import span

if TYPE_CHECKING:
    from meshgate.context.ports import ContextReader
    from meshgate.events.ports import EventPublisher
    from meshgate.models.service import ModelService
    from meshgate.tracecontext import TraceContext

log = logging.getLogger("meshgate.models")
T = TypeVar("T")
Charge = Callable[[int], Awaitable[None]]
ModelChooser = Callable[[str, "str | None", str], Awaitable[str]]
"""(tenant, end user, flag key) -> the model a feature flag chooses for that user."""
FLAG_PREFIX = "flag:"


@dataclass(slots=True)
class Caller:
    """Who asks, as the gateway established it, plus the routing hints of the request."""

    tenant: str
    key_id: str
    is_admin: bool
    user_id: str | None = None
    session_id: str | None = None
    version: str | None = None
    """An explicit version or alias (header ``x-model-version``, or the V2 versioned route)."""
    trace: TraceContext | None = None
    charge: Charge | None = None
    models: frozenset[str] | None = None
    """The models the caller's key may call; ``None``: every model of the tenant."""
    no_cache: bool = False
    """The request said ``cache-control: no-cache``: no stored answer for it."""


@dataclass(slots=True)
class Served:
    """Which version answered, under which prediction id, and what remains to do afterwards."""

    version: str
    prediction_id: str
    value: Any
    after: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    cache: str | None = None
    """``hit`` or ``miss`` when the model caches answers (the ``x-cache`` header)."""
    validation: list[str] | None = None
    """Input expectations the call violated, when the version's action is ``warn``."""

    async def run_after(self) -> None:
        for step in self.after:
            try:
                await step()
            except Exception:
                log.exception("after-response step of prediction %s failed", self.prediction_id)


class Inference:
    def __init__(
        self,
        service: ModelService,
        events: EventPublisher,
        context: ContextReader,
        gate: Gate,
        choose_model: ModelChooser | None = None,
    ):
        self.service = service
        self.events = events
        self.context = context
        self.gate = gate
        """Cost and safety checks around each chat call (the economics gate, or an open one)."""
        self.choose_model = choose_model
        """Evaluates a feature flag for ``"model": "flag:<key>"``."""

    # --- choosing ----------------------------------------------------------------------

    async def chosen_model(self, caller: Caller, name: str) -> str:
        """``flag:<key>``: the model the flag gives the caller's end user; else ``name``."""
        if not name.startswith(FLAG_PREFIX):
            return name
        if self.choose_model is None:
            raise BadRequest("feature flags are not available here", param="model")
        return await self.choose_model(caller.tenant, caller.user_id, name[len(FLAG_PREFIX) :])

    async def runtime(self, caller: Caller, name: str) -> ModelRuntime:
        """The model ``name`` of the caller's tenant, when the caller's key may call it."""
        if caller.models is not None and name not in caller.models:
            raise Forbidden(
                f"this API key may not call the model {name!r}",
                code="model_not_allowed",
                param="model",
            )
        return await self.service.runtime(caller.tenant, name)

    def chain(self, rt: ModelRuntime, caller: Caller, *, explicit_any: bool = False) -> list[str]:
        """Versions to try in order: the chosen one, then the fallbacks (none when explicit)."""
        if caller.version is not None:
            if not (caller.is_admin or explicit_any):
                raise Forbidden("choosing a version with x-model-version needs an admin key")
            version = rt.version(caller.version)
            if version is None:
                raise NotFound(
                    f"model {rt.name!r} has no version or alias {caller.version!r}",
                    code="model_not_found",
                )
            return [version.version]
        key = None
        if rt.sticky == "user":
            key = caller.user_id or caller.session_id
        elif rt.sticky == "session":
            key = caller.session_id or caller.user_id
        primary = rt.split.pick(key)
        if primary not in rt.versions:
            raise NotFound(f"model {rt.name!r} has no version to serve", code="model_not_found")
        return fallback_chain(primary, [v for v in rt.fallback if v in rt.versions])

    def outbound(self, caller: Caller, timeout: float) -> Call:
        headers = caller.trace.outbound_headers() if caller.trace is not None else {}
        if caller.session_id:
            handle = self.context.handle(caller.tenant, caller.session_id)
            member = handle if "=" in handle else f"meshgate.ctx={handle}"
            headers["baggage"] = (
                f"{headers['baggage']},{member}" if "baggage" in headers else member
            )
        return Call(headers=headers, timeout=timeout)

    # --- calling -----------------------------------------------------------------------

    async def attempt(
        self,
        rt: ModelRuntime,
        chain: list[str],
        caller: Caller,
        work: Callable[[VersionRuntime, Call], Awaitable[T]],
        *,
        prediction_id: str,
        body: bytes,
    ) -> tuple[VersionRuntime, T]:
        """Calls the chain; a failure is recorded as a prediction with its status, and the
        error answer names the prediction too."""
        if not self.events.accepting():
            # The prediction could not be recorded: refuse before the upstream does the work
            # (and bills it) for an answer that would be a 503 anyway.
            raise BackendUnavailable(
                "the event log and its outbox are unavailable: the prediction cannot be"
                " recorded, so it is not made"
            )
        started = time.perf_counter()
        try:
            return await self._chain(rt, chain, caller, work)
        except MeshgateError as exc:
            exc.headers["x-prediction-id"] = prediction_id
            exc.headers["x-model-version"] = chain[-1] if isinstance(exc, Retryable) else chain[0]
            await self.record(
                Prediction(
                    prediction_id=prediction_id,
                    tenant=rt.tenant,
                    model=rt.name,
                    version=exc.headers["x-model-version"],
                    task=rt.task,
                    logging=rt.logging,
                    inputs_hash=digest(body),
                    inputs=None,
                    outputs=None,
                    latency_ms=(time.perf_counter() - started) * 1000,
                    trace_id=caller.trace.trace_id if caller.trace is not None else None,
                    user_id=caller.user_id,
                    session_id=caller.session_id,
                    status="error" if isinstance(exc, Retryable) else "rejected",
                    error=exc.detail,
                    key_id=caller.key_id,
                )
            )
            raise

    async def _chain(
        self,
        rt: ModelRuntime,
        chain: list[str],
        caller: Caller,
        work: Callable[[VersionRuntime, Call], Awaitable[T]],
    ) -> tuple[VersionRuntime, T]:
        """Each version of the chain in turn, through its breaker, retries and timeout."""
        failure: MeshgateError | None = None
        for name in chain:
            version = rt.versions[name]
            call = self.outbound(caller, version.timeout)

            async def once(v: VersionRuntime = version, c: Call = call) -> T:
                try:
                    with span(
                        "model call",
                        kind="client",
                        **{"meshgate.model": rt.name, "meshgate.model_version": v.version},
                    ):
                        async with asyncio.timeout(v.timeout):
                            return await work(v, c)
                except TimeoutError as exc:
                    raise UpstreamTimedOut(
                        f"version {v.version} of {rt.name} gave no answer within {v.timeout:g}s"
                    ) from exc

            try:
                await self.service.ready(version)
                return version, await version.breaker.call(
                    functools.partial(version.retry.call, once)
                )
            except Retryable as exc:
                failure = exc
                # An open breaker skips the call: logging each skip would flood the log.
                level = logging.DEBUG if isinstance(exc, CircuitOpen) else logging.WARNING
                log.log(level, "version %s of %s failed: %s", name, rt.name, exc.detail)
        assert failure is not None
        raise failure

    async def record(self, prediction: Prediction) -> None:
        await publish_prediction(self.events, prediction)

    def after_response(
        self,
        served: Served,
        rt: ModelRuntime,
        caller: Caller,
        shadow_work: Callable[[VersionRuntime, Call], Awaitable[Prediction]] | None,
        tokens: int = 0,
    ) -> None:
        """Charges tokens and calls the shadows once the client has its answer."""
        if tokens and caller.charge is not None:
            charge = caller.charge
            served.after.append(lambda: charge(tokens))
        if shadow_work is None:
            return
        for name in rt.shadow:
            if name in rt.versions and name != served.version:
                served.after.append(
                    functools.partial(
                        self.shadow, rt, name, caller, shadow_work, served.prediction_id
                    )
                )

    async def shadow(
        self,
        rt: ModelRuntime,
        name: str,
        caller: Caller,
        work: Callable[[VersionRuntime, Call], Awaitable[Prediction]],
        primary_id: str,
    ) -> None:
        """A shadow's answer goes only into its prediction event, never to the client."""
        version = rt.versions[name]
        call = self.outbound(caller, version.timeout)
        started = time.perf_counter()
        try:
            await self.service.ready(version)
            async with asyncio.timeout(version.timeout):
                prediction = await version.breaker.call(lambda: work(version, call))
        except (MeshgateError, TimeoutError) as exc:
            prediction = Prediction(
                prediction_id=new_prediction_id(),
                tenant=rt.tenant,
                model=rt.name,
                version=name,
                task=rt.task,
                logging=rt.logging,
                inputs_hash="",
                inputs=None,
                outputs=None,
                latency_ms=(time.perf_counter() - started) * 1000,
                trace_id=caller.trace.trace_id if caller.trace else None,
                user_id=caller.user_id,
                status="error",
                error=getattr(exc, "detail", "timeout"),
            )
        prediction.shadow, prediction.tenant, prediction.user_id = True, rt.tenant, caller.user_id
        prediction.key_id = caller.key_id
        prediction.logging, prediction.task = rt.logging, rt.task
        prediction.trace_id = caller.trace.trace_id if caller.trace else None
        prediction.extra["shadow_of"] = primary_id
        await self.record(prediction)


def require_task(rt: ModelRuntime, tasks: tuple[str, ...], route: str) -> None:
    if rt.task not in tasks:
        raise BadRequest(
            f"model {rt.name!r} is a {rt.task} model; {route} serves {' or '.join(tasks)} models",
            code="model_not_supported",
            param="model",
        )


class Relay:
    """A stream passed through as it arrives; ``on_end`` learns once how it ended (ok, error,
    disconnected), also when the stream is closed before it was read at all."""

    def __init__(self, chunks: AsyncIterator[bytes], on_end: Callable[[str], None]):
        self._chunks = chunks
        self._on_end: Callable[[str], None] | None = on_end
        self._failed = False

    def __aiter__(self) -> Relay:
        return self

    async def __anext__(self) -> bytes:
        if self._failed:
            self._end("error")
            raise StopAsyncIteration
        try:
            return await anext(self._chunks)
        except StopAsyncIteration:
            self._end("ok")
            raise
        except MeshgateError as exc:
            # Headers are sent: the failure can only be told as a last event of the stream.
            self._failed = True
            error = {"error": {"message": exc.detail, "type": "api_error", "code": exc.slug}}
            return b"data: " + orjson.dumps(error) + b"\n\n"
        except BaseException:
            self._end("disconnected")
            raise

    async def aclose(self) -> None:
        self._end("disconnected")
        close = getattr(self._chunks, "aclose", None)
        if close is not None:
            with contextlib.suppress(Exception):
                await close()

    def _end(self, outcome: str) -> None:
        if self._on_end is not None:
            on_end, self._on_end = self._on_end, None
            on_end(outcome)
