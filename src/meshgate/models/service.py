"""The model service: the registry with its events and audit, and the runtime cache.

The hot path asks :meth:`ModelService.runtime` for a compiled model; it is served from memory
and refreshed from the SQL store in the background once older than ``refresh_seconds``, so a
change made through another process is in effect within that time (at once in this one).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from meshgate.context.ports import ContextReader
from meshgate.errors import Conflict, MeshgateError, NotFound, ValidationFailed
from meshgate.events.catalogue import (
    MODEL_REGISTERED,
    MODEL_TRAFFIC_CHANGED,
    MODEL_VERSION_REGISTERED,
    EventType,
)
from meshgate.events.ports import EventPublisher
from meshgate.governance.ports import AuditRecorder, audited
from meshgate.models.breaker_reports import BreakerReports
from meshgate.models.config import (
    LoggingPolicy,
    ModelCreate,
    ModelDeclaration,
    TrafficPolicy,
    VersionCreate,
)
from meshgate.models.errors import UpstreamUnavailable
from meshgate.models.gate import Gate
from meshgate.models.inference import ModelChooser
from meshgate.models.predictions import publish_feedback
from meshgate.models.providers.http import HttpTransport
from meshgate.models.registry import Registry, default_logging
from meshgate.models.resilience import State
from meshgate.models.router import Split
from meshgate.models.runtime import (
    ModelRuntime,
    ProviderFactory,
    VersionRuntime,
    build_version,
    traffic_of,
)
from meshgate.sql import InTransaction, SqlStore

log = logging.getLogger("meshgate.models")
Key = tuple[str, str]
BreakerListener = Callable[[str, str, str, str], None]
"""Told (tenant, model, version, state) whenever a version's circuit breaker moves."""


class ModelService:
    def __init__(
        self,
        sql: SqlStore,
        transport: HttpTransport,
        factory: ProviderFactory,
        *,
        events: EventPublisher,
        audit: AuditRecorder,
        context: ContextReader,
        on_breaker: BreakerListener,
        breakers: BreakerReports,
        gate: Gate,
        refresh_seconds: float = 1.0,
        choose_model: ModelChooser | None = None,
    ):
        self.registry = Registry(sql)
        self.events = events
        self.audit = audit
        self.on_breaker = on_breaker
        self.breakers = breakers
        self.started = False
        """True once the declared models are applied (the V2 readiness route)."""
        self.transport = transport
        self.factory = factory
        self.refresh_seconds = refresh_seconds
        self._models: dict[Key, ModelRuntime] = {}
        self._versions: dict[tuple[str, str, str], VersionRuntime] = {}
        self._refreshing: set[Key] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        from meshgate.models.chat import ChatFlow
        from meshgate.models.inference import Inference
        from meshgate.models.tabular import TabularFlow

        self.inference = Inference(self, events, context, gate, choose_model)
        self.chat = ChatFlow(self.inference)
        self.tabular = TabularFlow(self.inference)

    # --- the hot path ------------------------------------------------------------------

    async def runtime(self, tenant: str, name: str) -> ModelRuntime:
        key = (tenant, name)
        found: ModelRuntime | None
        try:
            found = self._models[key]
        except KeyError:
            found = await self._load(key)
        else:
            stale = time.monotonic() - found.loaded_at > self.refresh_seconds
            if stale and key not in self._refreshing:
                self._refreshing.add(key)
                self.spawn(self._refresh(key))
        if found is None:
            raise NotFound(f"the model {name!r} does not exist", code="model_not_found")
        return found

    async def ready(self, version: VersionRuntime) -> VersionRuntime:
        """Starts a version's provider on first use (loading a file, resolving a function).

        A version that cannot load is unavailable, like an upstream that does not answer, so
        the fallback chain takes over; the next request tries to load it again."""
        if not version.started:
            try:
                await version.provider.start()
            except MeshgateError:
                raise
            except Exception as exc:
                log.exception("version %s of %s cannot load", version.version, version.model)
                raise UpstreamUnavailable(
                    f"version {version.version} of {version.model} cannot load: {exc}"
                ) from exc
            version.started = True
        return version

    async def warm(self, models: list[Key]) -> None:
        for tenant, name in models:
            try:
                for version in (await self.runtime(tenant, name)).versions.values():
                    await self.ready(version)
            except Exception:
                log.exception("loading model %s/%s failed; it loads on first use", tenant, name)

    async def _refresh(self, key: Key) -> None:
        try:
            await self._load(key)
        except Exception:
            log.exception("refreshing model %s/%s failed; serving the cached entry", *key)
        finally:
            self._refreshing.discard(key)

    async def _load(self, key: Key) -> ModelRuntime | None:
        tenant, name = key
        record = await self.registry.find_model(tenant, name)
        if record is None:
            # Unknown names are not cached: callers choose them, the cache would grow unbounded.
            self._models.pop(key, None)
            return None
        compiled = self._models[key] = self._compile(tenant, record)
        return compiled

    def _compile(self, tenant: str, record: dict[str, Any]) -> ModelRuntime:
        name = record["name"]
        logging_policy = LoggingPolicy.model_validate(record["logging"])
        versions = {}
        for raw in record["versions"]:
            vkey = (tenant, name, raw["version"])
            if vkey not in self._versions:
                spec = VersionCreate.model_validate(
                    {k: v for k, v in raw.items() if k not in ("registered_by", "created_at")}
                )
                try:
                    provider = self.factory.build(spec, record["task"], logging_policy, tenant)
                except MeshgateError as exc:
                    # One unusable version (say, an entry point since removed from the config)
                    # must not take the model's other versions down with it.
                    provider = Unavailable(spec.provider.type, exc.detail)
                reset = spec.resilience.breaker.reset_seconds
                moved = functools.partial(self._breaker_moved, tenant, reset)
                self._versions[vkey] = build_version(name, spec, provider, moved)
                # The gauge starts closed; only moves are reported to the cluster.
                self.on_breaker(tenant, name, spec.version, "closed")
            versions[raw["version"]] = self._versions[vkey]
        traffic = traffic_of(record) or TrafficPolicy(split={"": 100}, sticky="none")
        return ModelRuntime(
            tenant=tenant,
            name=name,
            task=record["task"],
            allow=tuple(record["context_policy"]["allow"]),
            logging=logging_policy,
            versions=versions,
            aliases=record["aliases"],
            split=Split.of(name, traffic.split),
            sticky=traffic.sticky,
            shadow=tuple(traffic.shadow),
            fallback=tuple(traffic.fallback),
            loaded_at=time.monotonic(),
            record=record,
        )

    def _breaker_moved(
        self, tenant: str, reset_seconds: float, model: str, version: str, state: State
    ) -> None:
        self.on_breaker(tenant, model, version, state.name.lower())
        self.breakers.moved(tenant, model, version, state, reset_seconds)

    def forget(self, tenant: str, name: str) -> None:
        self._models.pop((tenant, name), None)

    def spawn(self, work: Any) -> None:
        """Runs ``work`` in the background, keeping a reference until it ends."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- registry changes, with their events and audit records -------------------------

    async def create_model(self, tenant: str, body: ModelCreate, actor: str) -> dict[str, Any]:
        details = body.model_dump()
        audit = self._audit(MODEL_REGISTERED, actor, tenant, body.name, details)
        created = await self.registry.create_model(tenant, body, actor, then=audit)
        self.forget(tenant, body.name)
        await self._announce(MODEL_REGISTERED, tenant, body.name, actor, details)
        return created

    async def add_version(
        self, tenant: str, model: str, body: VersionCreate, actor: str, *, from_api: bool = True
    ) -> dict[str, Any]:
        if from_api:
            await self.factory.check_api(body, tenant)
        details = {"version": body.version, **provider_summary(body.provider)}
        audit = self._audit(MODEL_VERSION_REGISTERED, actor, tenant, model, details, body.version)
        added = await self.registry.add_version(tenant, model, body, actor, then=audit)
        self.forget(tenant, model)
        await self._announce(MODEL_VERSION_REGISTERED, tenant, model, actor, details)
        return added

    async def set_alias(
        self, tenant: str, model: str, alias: str, version: str, actor: str
    ) -> dict[str, Any]:
        details = {"alias": alias, "version": version}
        audit = self._audit("model.alias.set", actor, tenant, model, details, version)
        result = await self.registry.set_alias(tenant, model, alias, version, actor, then=audit)
        self.forget(tenant, model)
        return result

    async def set_traffic(
        self, tenant: str, model: str, policy: TrafficPolicy, actor: str
    ) -> dict[str, Any]:
        audit = self._audit(MODEL_TRAFFIC_CHANGED, actor, tenant, model, policy.model_dump())
        result = await self.registry.set_traffic(tenant, model, policy, actor, then=audit)
        self.forget(tenant, model)
        await self._announce(MODEL_TRAFFIC_CHANGED, tenant, model, actor, result)
        return result

    async def patch_traffic(
        self, tenant: str, model: str, patch: dict[str, Any], actor: str
    ) -> dict[str, Any]:
        """JSON merge patch (RFC 7396) of the traffic policy: what the patch leaves out stays."""
        current = traffic_of(await self.registry.get_model(tenant, model))
        base = current.model_dump() if current is not None else {}
        try:
            policy = TrafficPolicy.model_validate(merge_patch(base, patch))
        except ValidationError as exc:
            detail = "; ".join(e["msg"] for e in exc.errors())
            raise ValidationFailed(f"the patched traffic policy is invalid: {detail}") from exc
        return await self.set_traffic(tenant, model, policy, actor)

    async def _announce(
        self,
        type_: EventType[Any],
        tenant: str,
        model: str,
        actor: str,
        details: dict[str, Any],
    ) -> None:
        data = type_.data(type_.payload(model=model, actor=actor, **details))
        await self.events.publish(type_.name, tenant=tenant, data=data, subject=f"models/{model}")

    def _audit(
        self,
        change: EventType[Any] | str,
        actor: str,
        tenant: str,
        model: str,
        details: dict[str, Any],
        version: str | None = None,
    ) -> InTransaction:
        """The audit record of a registry change, written in the change's own transaction."""
        action = change if isinstance(change, str) else change.name.removeprefix("meshgate.")
        return audited(
            self.audit,
            actor=actor,
            tenant=tenant,
            action=action,
            resource=f"models/{model}",
            details=details,
            model_version=version,
        )

    async def publish_feedback(
        self, *, tenant: str, prediction_id: str, feedback: dict[str, Any]
    ) -> str:
        """Appends ``meshgate.prediction.feedback``; returns the event id."""
        return await publish_feedback(
            self.events, tenant=tenant, prediction_id=prediction_id, feedback=feedback
        )

    async def start(self, declarations: list[ModelDeclaration]) -> None:
        """Apply the declared models, then load them in the background."""
        await self.apply(declarations)
        self.started = True
        # Load the declared models now rather than on their first request.
        self.spawn(self.warm([(d.tenant, d.name) for d in declarations]))

    async def apply(self, declarations: list[ModelDeclaration], actor: str = "config") -> None:
        """Brings the registry in line with declared models; existing versions must match."""
        for d in declarations:
            found = await self.registry.find_model(d.tenant, d.name)
            if found is None:
                model = ModelCreate.model_validate(
                    d.model_dump(include=set(ModelCreate.model_fields))
                )
                with contextlib.suppress(Conflict):  # another worker starting at the same time
                    await self.create_model(d.tenant, model, actor)
                found = await self.registry.get_model(d.tenant, d.name)
            known = {v["version"]: v for v in found["versions"]}
            for v in d.versions:
                if v.version in known:
                    check_same(d.name, v, known[v.version])
                    continue
                try:
                    await self.add_version(d.tenant, d.name, v, actor, from_api=False)
                except Conflict:
                    stored = await self.registry.get_model(d.tenant, d.name)
                    check_same(
                        d.name, v, next(x for x in stored["versions"] if x["version"] == v.version)
                    )
            for alias, version in d.aliases.items():
                if found["aliases"].get(alias) != version:
                    await self.set_alias(d.tenant, d.name, alias, version, actor)
            if d.traffic is not None and found["traffic"] != d.traffic.model_dump():
                await self.set_traffic(d.tenant, d.name, d.traffic, actor)

    async def close(self) -> None:
        # This process's breakers end with it: its open reports are withdrawn now, so the
        # cluster's breaker alert does not wait for them to lapse (a rolling restart).
        for key, runtime in self._versions.items():
            if runtime.breaker.state is not State.CLOSED:
                reset = runtime.breaker.reset_seconds
                self.breakers.moved(*key, State.CLOSED, reset, stopped=True)
        await self.breakers.close()
        for task in list(self._tasks):
            task.cancel()
        for version in self._versions.values():
            if version.started:
                await version.provider.close()
        await self.transport.close()


class Unavailable:
    """Stands in for a provider that cannot be built; every call is unavailable."""

    def __init__(self, kind: str, reason: str):
        self.kind = kind
        self.reason = reason

    async def start(self) -> None:
        raise UpstreamUnavailable(self.reason)

    async def close(self) -> None:
        pass


def provider_summary(provider: Any) -> dict[str, Any]:
    """What the event and the audit record keep of a provider: where and as whom, no secret."""
    summary: dict[str, Any] = {"provider": provider.type}
    url = getattr(provider, "base_url", None) or getattr(provider, "url", None)
    if url is not None:
        summary["url"] = url
    if (credential := getattr(provider, "credential", None)) is not None:
        summary["credential"] = credential
    elif (env := getattr(provider, "api_key_env", None)) is not None:
        summary["credential"] = f"env:{env}"
    return summary


def check_same(model: str, declared: VersionCreate, stored: dict[str, Any]) -> None:
    stored_spec = {k: v for k, v in stored.items() if k not in ("registered_by", "created_at")}
    if declared.model_dump(exclude_none=True) != stored_spec:
        raise Conflict(
            f"version {declared.version} of {model} in the config differs from the registered "
            "one; versions are immutable, so declare a new version instead"
        )


__all__ = ["ModelService", "default_logging"]


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: objects merge member by member, ``null`` removes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result
