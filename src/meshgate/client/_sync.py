"""The blocking client: ``Client(base_url, api_key)``; every call returns a typed model."""

from __future__ import annotations

import builtins
import time
from collections.abc import Iterator, Mapping
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


class Client:
    """Meshgate over HTTP. ``base_url`` and ``api_key`` default to ``MESHGATE_URL`` and
    ``MESHGATE_API_KEY``. Use it as a context manager, or call ``close()``."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        http: httpx.Client | None = None,
    ):
        url, key = resolve_settings(base_url, api_key)
        self.base_url = url
        self.retry = retry or RetryPolicy()
        self._http = http or httpx.Client(base_url=url, timeout=timeout)
        self._http.headers.update(default_headers(key))
        self.keys = Keys(self)
        self.models = Models(self)
        self.rollouts = Rollouts(self)
        self.inference = Inference(self)
        self.context = Context(self)
        self.events = Events(self)
        self.audit = Audit(self)
        self.monitoring = Monitoring(self)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def whoami(self) -> m.Principal:
        """The calling key: id, tenant, scopes and limits."""
        return self.call(ops.whoami())

    def call(self, op: ops.Op[T]) -> T:
        return op.parse(self.send(op.method, op.path, **request_kwargs(op)))

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request with the retry policy; an error status raises its typed error."""
        attempt = 0
        while True:
            try:
                response = self._http.request(method, path, **kwargs)
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
            time.sleep(wait)
            attempt += 1


class _Part:
    def __init__(self, client: Client):
        self._client = client

    def _call(self, op: ops.Op[T]) -> T:
        return self._client.call(op)


class Keys(_Part):
    """API keys (admin scope)."""

    def list(self) -> list[m.Key]:
        return self._call(ops.list_keys())

    def create(
        self,
        scopes: builtins.list[str],
        *,
        tenant: str | None = None,
        rpm: int | None = None,
        tpm: int | None = None,
        description: str | None = None,
        expires_at: str | None = None,
    ) -> m.KeyCreated:
        return self._call(ops.create_key(scopes, tenant, rpm, tpm, description, expires_at))

    def get(self, key_id: str) -> m.Key:
        return self._call(ops.get_key(key_id))

    def revoke(self, key_id: str) -> m.Key:
        return self._call(ops.revoke_key(key_id))


class Models(_Part):
    """The model registry: models, immutable versions, aliases, traffic, history."""

    def list(self) -> list[m.Model]:
        return self._call(ops.list_models())

    def get(self, name: str) -> m.Model:
        return self._call(ops.get_model(name))

    def create(self, name: str, **fields: Any) -> m.Model:
        return self._call(ops.create_model(name, fields))

    def add_version(
        self, name: str, version: str, provider: dict[str, Any], **fields: Any
    ) -> m.ModelVersion:
        return self._call(ops.add_version(name, version, {"provider": provider, **fields}))

    def set_alias(self, name: str, alias: str, version: str) -> dict[str, Any]:
        return self._call(ops.set_alias(name, alias, version))

    def set_traffic(
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
        return self._call(ops.set_traffic(name, policy))

    def update_traffic(self, name: str, **changes: Any) -> m.TrafficPolicy:
        """Change only the given parts (``split``, ``shadow``, ``fallback``, ``sticky``)."""
        return self._call(ops.patch_traffic(name, changes))

    def history(self, name: str) -> builtins.list[m.ModelChange]:
        return self._call(ops.model_history(name))

    def feedback(self, prediction_id: str, **fields: Any) -> m.Feedback:
        """Ground truth for a prediction: ``label``, ``score``, ``comment``."""
        return self._call(ops.feedback(prediction_id, fields))


class Rollouts(_Part):
    """Rollouts of a model: start one, follow it, move it by hand."""

    def start(self, model: str, candidate: str, baseline: str, **fields: Any) -> m.Rollout:
        """``mode``, ``steps``, ``interval_seconds``, ``min_requests``, ``analysis``."""
        body = {"candidate": candidate, "baseline": baseline, **fields}
        return self._call(ops.start_rollout(model, body))

    def list(self, model: str) -> builtins.list[m.Rollout]:
        return self._call(ops.list_rollouts(model))

    def get(self, model: str, rollout_id: str) -> m.Rollout:
        return self._call(ops.get_rollout(model, rollout_id))

    def pause(self, model: str, rollout_id: str) -> m.Rollout:
        return self._call(ops.control_rollout(model, rollout_id, "pause"))

    def resume(self, model: str, rollout_id: str) -> m.Rollout:
        return self._call(ops.control_rollout(model, rollout_id, "resume"))

    def promote(self, model: str, rollout_id: str) -> m.Rollout:
        return self._call(ops.control_rollout(model, rollout_id, "promote"))

    def abort(self, model: str, rollout_id: str) -> m.Rollout:
        return self._call(ops.control_rollout(model, rollout_id, "abort"))


class Inference(_Part):
    """Calling models: Open Inference Protocol (V2) and OpenAI-compatible chat."""

    def infer(
        self,
        model: str,
        inputs: list[dict[str, Any]],
        *,
        version: str | None = None,
        user_id: str | None = None,
        parameters: Mapping[str, Any] | None = None,
    ) -> m.InferenceResult:
        return self._call(ops.infer(model, inputs, version, user_id, parameters))

    def chat(self, model: str, messages: list[dict[str, Any]], **fields: Any) -> Any:
        return self._call(ops.chat(model, messages, fields))

    def models(self) -> list[m.OpenAIModel]:
        return self._call(ops.openai_models())


class Context(_Part):
    """The Context Mesh: users, sessions, interactions, policies, erasure."""

    def get_user(self, user_id: str) -> m.UserContext:
        return self._call(ops.get_user(user_id))

    def patch_user(
        self,
        user_id: str,
        *,
        attributes: Mapping[str, Any] | None = None,
        preferences: Mapping[str, Any] | None = None,
        if_match: str | None = None,
    ) -> m.UserContext:
        """JSON merge-patch: a null value removes a key. Creates the user when new."""
        patch = ops.clean({"attributes": attributes, "preferences": preferences})
        return self._call(ops.patch_user(user_id, patch, if_match))

    def erase_user(self, user_id: str) -> m.ErasureReceipt:
        return self._call(ops.erase_user(user_id))

    def export_user(self, user_id: str) -> m.UserExport:
        return self._call(ops.export_user(user_id))

    def create_session(self, user_id: str, **fields: Any) -> m.Session:
        return self._call(ops.create_session(user_id, fields))

    def get_session(self, session_id: str) -> m.Session:
        return self._call(ops.get_session(session_id))

    def patch_session(self, session_id: str, state: Mapping[str, Any]) -> m.Session:
        return self._call(ops.patch_session(session_id, state))

    def add_interaction(
        self, session_id: str, role: str, content: str, metadata: Mapping[str, Any] | None = None
    ) -> m.Interaction:
        return self._call(ops.add_interaction(session_id, role, content, metadata))

    def interactions(self, session_id: str, limit: int = 20) -> list[m.Interaction]:
        return self._call(ops.interactions(session_id, limit))

    def resolve(
        self,
        consumer: str,
        *,
        user_id: str | None = None,
        session_id: str | None = None,
        handle: str | None = None,
    ) -> m.ResolvedContext:
        """What ``consumer``'s policy lets it see of the user (and session)."""
        return self._call(ops.resolve(consumer, user_id, session_id, handle))

    def policies(self) -> list[m.ContextPolicy]:
        return self._call(ops.list_policies())

    def get_policy(self, consumer: str) -> m.ContextPolicy:
        return self._call(ops.get_policy(consumer))

    def set_policy(self, consumer: str, allow: list[str]) -> m.ContextPolicy:
        return self._call(ops.set_policy(consumer, allow))

    def delete_policy(self, consumer: str) -> None:
        return self._call(ops.delete_policy(consumer))


class Events(_Part):
    """The event log: pages, publishing, export, webhook subscriptions, the live stream."""

    def page(
        self,
        *,
        after: int = 0,
        limit: int = 100,
        type: str | None = None,
        subject: str | None = None,
    ) -> ops.Page[m.Event]:
        return self._call(ops.list_events(after, limit, type, subject))

    def iter(
        self,
        *,
        after: int = 0,
        type: str | None = None,
        subject: str | None = None,
        page_size: int = 500,
    ) -> Iterator[m.Event]:
        """Every matching event after ``after``, in log order, page by page."""
        cursor: int | None = after
        while cursor is not None:
            page = self.page(after=cursor, limit=page_size, type=type, subject=subject)
            yield from page.items
            cursor = page.next_after

    def publish(self, event: dict[str, Any]) -> m.Event:
        return self._call(ops.publish(event))

    def publish_batch(self, events: list[dict[str, Any]]) -> list[m.Event]:
        return self._call(ops.publish(events))

    def export(
        self,
        *,
        format: str = "jsonl",
        type: str | None = None,
        subject: str | None = None,
        since: str | None = None,
    ) -> Iterator[bytes]:
        """The history as JSON lines or Parquet, in chunks as they arrive."""
        params = ops.export_params(format, type, subject, since)
        with self._client._http.stream("GET", "/v1/events/export", params=params) as response:
            if response.status_code >= 400:
                response.read()
                raise error_for(response)
            yield from response.iter_bytes()

    def stream(
        self, *, type: str | None = None, subject: str | None = None, after: int | None = None
    ) -> Iterator[m.Event]:
        """Live events (server-sent events) until the caller stops iterating."""
        params = ops.stream_params(type, subject, after)
        with self._client._http.stream(
            "GET", "/v1/events/stream", params=params, timeout=httpx.Timeout(None, connect=10)
        ) as response:
            if response.status_code >= 400:
                response.read()
                raise error_for(response)
            for sse in SSEDecoder().feed_lines(response.iter_lines()):
                yield m.Event.model_validate_json(sse.data)

    def subscriptions(self) -> list[m.Subscription]:
        return self._call(ops.list_subscriptions())

    def subscribe(self, url: str, secret: str, types: list[str] | None = None) -> m.Subscription:
        return self._call(ops.create_subscription(url, secret, types))

    def get_subscription(self, sub_id: str) -> m.Subscription:
        return self._call(ops.get_subscription(sub_id))

    def unsubscribe(self, sub_id: str) -> None:
        return self._call(ops.delete_subscription(sub_id))

    def replay_subscription(
        self, sub_id: str, after: int, until: int | None = None
    ) -> dict[str, Any]:
        return self._call(ops.replay_subscription(sub_id, after, until))


class Audit(_Part):
    """The hash-chained audit trail."""

    def page(self, *, after: int = 0, limit: int = 100, **filters: Any) -> ops.Page[m.AuditRecord]:
        """Filters: ``since``, ``until``, ``action``, ``resource``, ``actor``, ``tenant``."""
        return self._call(ops.list_audit(after, limit, filters))

    def iter(
        self, *, after: int = 0, page_size: int = 500, **filters: Any
    ) -> Iterator[m.AuditRecord]:
        cursor: int | None = after
        while cursor is not None:
            page = self.page(after=cursor, limit=page_size, **filters)
            yield from page.items
            cursor = page.next_after

    def checkpoints(self, *, after: int = 0, page_size: int = 500) -> Iterator[m.AuditCheckpoint]:
        cursor: int | None = after
        while cursor is not None:
            page = self._call(ops.list_checkpoints(cursor, page_size))
            yield from page.items
            cursor = page.next_after

    def verify(self) -> m.AuditVerification:
        return self._call(ops.verify_audit())

    def public_key(self) -> m.PublicKey:
        return self._call(ops.audit_public_key())


class Monitoring(_Part):
    def model(self, name: str) -> m.ModelMonitoring:
        """Requests, errors, latency, accuracy and drift of each version of a model."""
        return self._call(ops.model_monitoring(name))

    def slo(self, window_seconds: int | None = None) -> m.SloReport:
        return self._call(ops.slo(window_seconds))
