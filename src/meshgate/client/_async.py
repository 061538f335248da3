"""The asyncio client: ``AsyncClient(base_url, api_key)``; the same calls as ``Client``, awaited."""

from __future__ import annotations

import asyncio
import builtins
from collections.abc import AsyncIterator, Mapping
from typing import Any, TypeVar

import httpx

from meshgate.client import _ops as ops
from meshgate.client import models as m
from meshgate.client._http import (
    DEFAULT_TIMEOUT,
    RETRY_STATUSES,
    RetryPolicy,
    SSEDecoder,
    default_headers,
    request_kwargs,
    resolve_settings,
)
from meshgate.client.errors import APIConnectionError, error_for

T = TypeVar("T")


class AsyncClient:
    """Meshgate over HTTP. ``base_url`` and ``api_key`` default to ``MESHGATE_URL`` and
    ``MESHGATE_API_KEY``. Use it as a context manager, or call ``close()``."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        http: httpx.AsyncClient | None = None,
    ):
        url, key = resolve_settings(base_url, api_key)
        self.base_url = url
        self.retry = retry or RetryPolicy()
        self._http = http or httpx.AsyncClient(base_url=url, timeout=timeout)
        self._http.headers.update(default_headers(key))
        self.keys = AsyncKeys(self)
        self.models = AsyncModels(self)
        self.rollouts = AsyncRollouts(self)
        self.inference = AsyncInference(self)
        self.context = AsyncContext(self)
        self.events = AsyncEvents(self)
        self.audit = AsyncAudit(self)
        self.monitoring = AsyncMonitoring(self)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def whoami(self) -> m.Principal:
        """The calling key: id, tenant, scopes and limits."""
        return await self.call(ops.whoami())

    async def call(self, op: ops.Op[T]) -> T:
        return op.parse(await self.send(op.method, op.path, **request_kwargs(op)))

    async def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request with the retry policy; an error status raises its typed error."""
        attempt = 0
        while True:
            try:
                response = await self._http.request(method, path, **kwargs)
            except (httpx.ConnectError, httpx.RemoteProtocolError) as exc:
                wait = self.retry.delay(attempt, None)
                if wait is None:
                    raise APIConnectionError(f"{self.base_url}: {exc}") from exc
            except httpx.TimeoutException as exc:
                raise APIConnectionError(f"{self.base_url}: timed out ({exc})") from exc
            else:
                if response.status_code < 400:
                    return response
                wait = (
                    self.retry.delay(attempt, response)
                    if response.status_code in RETRY_STATUSES
                    else None
                )
                if wait is None:
                    raise error_for(response)
            await asyncio.sleep(wait)
            attempt += 1


class _Part:
    def __init__(self, client: AsyncClient):
        self._client = client

    async def _call(self, op: ops.Op[T]) -> T:
        return await self._client.call(op)


class AsyncKeys(_Part):
    """API keys (admin scope)."""

    async def list(self) -> list[m.Key]:
        return await self._call(ops.list_keys())

    async def create(
        self,
        scopes: builtins.list[str],
        *,
        tenant: str | None = None,
        rpm: int | None = None,
        tpm: int | None = None,
        description: str | None = None,
        expires_at: str | None = None,
    ) -> m.KeyCreated:
        return await self._call(ops.create_key(scopes, tenant, rpm, tpm, description, expires_at))

    async def get(self, key_id: str) -> m.Key:
        return await self._call(ops.get_key(key_id))

    async def revoke(self, key_id: str) -> m.Key:
        return await self._call(ops.revoke_key(key_id))


class AsyncModels(_Part):
    """The model registry: models, immutable versions, aliases, traffic, history."""

    async def list(self) -> list[m.Model]:
        return await self._call(ops.list_models())

    async def get(self, name: str) -> m.Model:
        return await self._call(ops.get_model(name))

    async def create(self, name: str, **fields: Any) -> m.Model:
        return await self._call(ops.create_model(name, fields))

    async def add_version(
        self, name: str, version: str, provider: dict[str, Any], **fields: Any
    ) -> m.ModelVersion:
        return await self._call(ops.add_version(name, version, {"provider": provider, **fields}))

    async def set_alias(self, name: str, alias: str, version: str) -> dict[str, Any]:
        return await self._call(ops.set_alias(name, alias, version))

    async def set_traffic(
        self,
        name: str,
        split: Mapping[str, int],
        *,
        shadow: builtins.list[str] | None = None,
        fallback: builtins.list[str] | None = None,
        sticky: str | None = None,
    ) -> m.TrafficPolicy:
        """Replace the whole traffic policy (what is not given takes its default)."""
        policy = {"split": dict(split), "shadow": shadow, "fallback": fallback, "sticky": sticky}
        return await self._call(ops.set_traffic(name, policy))

    async def update_traffic(self, name: str, **changes: Any) -> m.TrafficPolicy:
        """Change only the given parts (``split``, ``shadow``, ``fallback``, ``sticky``)."""
        return await self._call(ops.patch_traffic(name, changes))

    async def history(self, name: str) -> builtins.list[m.ModelChange]:
        return await self._call(ops.model_history(name))

    async def feedback(self, prediction_id: str, **fields: Any) -> m.Feedback:
        """Ground truth for a prediction: ``label``, ``score``, ``comment``."""
        return await self._call(ops.feedback(prediction_id, fields))


class AsyncRollouts(_Part):
    """Rollouts of a model: start one, follow it, move it by hand."""

    async def start(self, model: str, candidate: str, baseline: str, **fields: Any) -> m.Rollout:
        """``mode``, ``steps``, ``interval_seconds``, ``min_requests``, ``analysis``."""
        body = {"candidate": candidate, "baseline": baseline, **fields}
        return await self._call(ops.start_rollout(model, body))

    async def list(self, model: str) -> builtins.list[m.Rollout]:
        return await self._call(ops.list_rollouts(model))

    async def get(self, model: str, rollout_id: str) -> m.Rollout:
        return await self._call(ops.get_rollout(model, rollout_id))

    async def pause(self, model: str, rollout_id: str) -> m.Rollout:
        return await self._call(ops.control_rollout(model, rollout_id, "pause"))

    async def resume(self, model: str, rollout_id: str) -> m.Rollout:
        return await self._call(ops.control_rollout(model, rollout_id, "resume"))

    async def promote(self, model: str, rollout_id: str) -> m.Rollout:
        return await self._call(ops.control_rollout(model, rollout_id, "promote"))

    async def abort(self, model: str, rollout_id: str) -> m.Rollout:
        return await self._call(ops.control_rollout(model, rollout_id, "abort"))


class AsyncInference(_Part):
    """Calling models: Open Inference Protocol (V2) and OpenAI-compatible chat."""

    async def infer(
        self,
        model: str,
        inputs: list[dict[str, Any]],
        *,
        version: str | None = None,
        user_id: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> m.InferenceResult:
        return await self._call(ops.infer(model, inputs, version, user_id, parameters))

    async def chat(self, model: str, messages: list[dict[str, Any]], **fields: Any) -> Any:
        return await self._call(ops.chat(model, messages, fields))

    async def models(self) -> list[m.OpenAIModel]:
        return await self._call(ops.openai_models())


class AsyncContext(_Part):
    """The Context Mesh: users, sessions, interactions, policies, erasure."""

    async def get_user(self, user_id: str) -> m.UserContext:
        return await self._call(ops.get_user(user_id))

    async def patch_user(
        self,
        user_id: str,
        *,
        attributes: Mapping[str, Any] | None = None,
        preferences: Mapping[str, Any] | None = None,
        if_match: str | None = None,
    ) -> m.UserContext:
        """JSON merge-patch: a null value removes a key. Creates the user when new."""
        patch = ops.clean({"attributes": attributes, "preferences": preferences})
        return await self._call(ops.patch_user(user_id, patch, if_match))

    async def erase_user(self, user_id: str) -> m.ErasureReceipt:
        return await self._call(ops.erase_user(user_id))

    async def export_user(self, user_id: str) -> m.UserExport:
        return await self._call(ops.export_user(user_id))

    async def create_session(self, user_id: str, **fields: Any) -> m.Session:
        return await self._call(ops.create_session(user_id, fields))

    async def get_session(self, session_id: str) -> m.Session:
        return await self._call(ops.get_session(session_id))

    async def patch_session(self, session_id: str, state: Mapping[str, Any]) -> m.Session:
        return await self._call(ops.patch_session(session_id, state))

    async def add_interaction(
        self, session_id: str, role: str, content: str, metadata: Mapping[str, Any] | None = None
    ) -> m.Interaction:
        return await self._call(ops.add_interaction(session_id, role, content, metadata))

    async def interactions(self, session_id: str, limit: int = 20) -> list[m.Interaction]:
        return await self._call(ops.interactions(session_id, limit))

    async def resolve(
        self,
        consumer: str,
        *,
        user_id: str | None = None,
        session_id: str | None = None,
        handle: str | None = None,
    ) -> m.ResolvedContext:
        """What ``consumer``'s policy lets it see of the user (and session)."""
        return await self._call(ops.resolve(consumer, user_id, session_id, handle))

    async def policies(self) -> list[m.ContextPolicy]:
        return await self._call(ops.list_policies())

    async def get_policy(self, consumer: str) -> m.ContextPolicy:
        return await self._call(ops.get_policy(consumer))

    async def set_policy(self, consumer: str, allow: list[str]) -> m.ContextPolicy:
        return await self._call(ops.set_policy(consumer, allow))

    async def delete_policy(self, consumer: str) -> None:
        return await self._call(ops.delete_policy(consumer))


class AsyncEvents(_Part):
    """The event log: pages, publishing, export, webhook subscriptions, the live stream."""

    async def page(
        self,
        *,
        after: int = 0,
        limit: int = 100,
        type: str | None = None,
        subject: str | None = None,
    ) -> ops.Page[m.Event]:
        return await self._call(ops.list_events(after, limit, type, subject))

    async def iter(
        self,
        *,
        after: int = 0,
        type: str | None = None,
        subject: str | None = None,
        page_size: int = 500,
    ) -> AsyncIterator[m.Event]:
        """Every matching event after ``after``, in log order, page by page."""
        cursor: int | None = after
        while cursor is not None:
            page = await self.page(after=cursor, limit=page_size, type=type, subject=subject)
            for event in page.items:
                yield event
            cursor = page.next_after

    async def publish(self, event: dict[str, Any]) -> m.Event:
        return await self._call(ops.publish(event))

    async def publish_batch(self, events: list[dict[str, Any]]) -> list[m.Event]:
        return await self._call(ops.publish(events))

    async def export(
        self,
        *,
        format: str = "jsonl",
        type: str | None = None,
        subject: str | None = None,
        since: str | None = None,
    ) -> AsyncIterator[bytes]:
        """The history as JSON lines or Parquet, in chunks as they arrive."""
        params = ops.export_params(format, type, subject, since)
        async with self._client._http.stream("GET", "/v1/events/export", params=params) as response:
            if response.status_code >= 400:
                await response.aread()
                raise error_for(response)
            async for chunk in response.aiter_bytes():
                yield chunk

    async def stream(
        self,
        *,
        type: str | None = None,
        subject: str | None = None,
        after: int | None = None,
        reconnect: bool = True,
    ) -> AsyncIterator[m.Event]:
        """Live events (server-sent events) until the caller stops iterating.

        Without ``after`` it starts at the live end. A dropped connection is resumed after
        the last event seen (``Last-Event-ID``), so nothing is missed or repeated.
        """
        decoder = SSEDecoder()
        params = ops.stream_params(type, subject, after)
        attempt = 0
        while True:
            headers = {"last-event-id": decoder.last_id} if decoder.last_id else {}
            try:
                async with self._client._http.stream(
                    "GET",
                    "/v1/events/stream",
                    params=params,
                    headers=headers,
                    timeout=httpx.Timeout(None, connect=10),
                ) as response:
                    if response.status_code >= 400:
                        await response.aread()
                        raise error_for(response)
                    attempt = 0
                    async for line in response.aiter_lines():
                        sse = decoder.feed(line)
                        if sse is not None:
                            yield m.Event.model_validate_json(sse.data)
            except (httpx.TransportError, httpx.StreamError) as exc:
                wait = self._client.retry.delay(attempt, None) if reconnect else None
                if wait is None:
                    raise APIConnectionError(f"event stream lost: {exc}") from exc
                await asyncio.sleep(wait)
                attempt += 1
                continue
            if not reconnect:
                return

    async def subscriptions(self) -> list[m.Subscription]:
        return await self._call(ops.list_subscriptions())

    async def subscribe(
        self, url: str, secret: str, types: list[str] | None = None
    ) -> m.Subscription:
        return await self._call(ops.create_subscription(url, secret, types))

    async def get_subscription(self, sub_id: str) -> m.Subscription:
        return await self._call(ops.get_subscription(sub_id))

    async def unsubscribe(self, sub_id: str) -> None:
        return await self._call(ops.delete_subscription(sub_id))

    async def replay_subscription(
        self, sub_id: str, after: int, until: int | None = None
    ) -> dict[str, Any]:
        return await self._call(ops.replay_subscription(sub_id, after, until))


class AsyncAudit(_Part):
    """The hash-chained audit trail."""

    async def page(
        self, *, after: int = 0, limit: int = 100, **filters: Any
    ) -> ops.Page[m.AuditRecord]:
        """Filters: ``since``, ``until``, ``action``, ``resource``, ``actor``, ``tenant``."""
        return await self._call(ops.list_audit(after, limit, filters))

    async def iter(
        self, *, after: int = 0, page_size: int = 500, **filters: Any
    ) -> AsyncIterator[m.AuditRecord]:
        cursor: int | None = after
        while cursor is not None:
            page = await self.page(after=cursor, limit=page_size, **filters)
            for record in page.items:
                yield record
            cursor = page.next_after

    async def checkpoints(
        self, *, after: int = 0, page_size: int = 500
    ) -> AsyncIterator[m.AuditCheckpoint]:
        cursor: int | None = after
        while cursor is not None:
            checkpoints = await self._call(ops.list_checkpoints(cursor, page_size))
            for checkpoint in checkpoints.items:
                yield checkpoint
            cursor = checkpoints.next_after

    async def verify(self) -> m.AuditVerification:
        return await self._call(ops.verify_audit())

    async def public_key(self) -> m.PublicKey:
        return await self._call(ops.audit_public_key())


class AsyncMonitoring(_Part):
    async def model(self, name: str) -> m.ModelMonitoring:
        """Requests, errors, latency, accuracy and drift of each version of a model."""
        return await self._call(ops.model_monitoring(name))

    async def slo(self, window_seconds: int | None = None) -> m.SloReport:
        return await self._call(ops.slo(window_seconds))
