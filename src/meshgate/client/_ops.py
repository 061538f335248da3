"""Every API operation once, as data: method, path, query, body and how to read the answer.

The sync and async clients only differ in how they send an ``Op``; what each call means
lives here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, overload
from urllib.parse import quote

import httpx
from pydantic import BaseModel

from meshgate.client import models as m

T = TypeVar("T")
R = TypeVar("R", bound=BaseModel)


@dataclass(frozen=True)
class Op(Generic[T]):
    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: Mapping[str, Any] | None = None
    json: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list; ``next_after`` is the cursor of the next page, None at the end."""

    items: list[T]
    next_after: int | None


def seg(value: str) -> str:
    """A path segment, escaped: a name never changes the path it is put in."""
    return quote(str(value), safe="")


def clean(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def one(kind: type[R], key: str | None = None) -> Callable[[httpx.Response], R]:
    def parse(response: httpx.Response) -> R:
        body = response.json()
        return kind.model_validate(body[key] if key else body)

    return parse


def many(kind: type[R], key: str) -> Callable[[httpx.Response], list[R]]:
    def parse(response: httpx.Response) -> list[R]:
        return [kind.model_validate(item) for item in response.json()[key]]

    return parse


def raw_json(response: httpx.Response) -> Any:
    return response.json()


def nothing(response: httpx.Response) -> None:
    return None


# --- keys and identity ---------------------------------------------------------------------


def whoami() -> Op[m.Principal]:
    return Op("GET", "/v1/whoami", one(m.Principal))


def list_keys() -> Op[list[m.Key]]:
    return Op("GET", "/v1/admin/keys", many(m.Key, "keys"))


def create_key(
    scopes: list[str],
    tenant: str | None,
    rpm: int | None,
    tpm: int | None,
    description: str | None,
    expires_at: str | None,
) -> Op[m.KeyCreated]:
    body = clean(
        {
            "scopes": scopes,
            "tenant": tenant,
            "rpm": rpm,
            "tpm": tpm,
            "description": description,
            "expires_at": expires_at,
        }
    )
    return Op("POST", "/v1/admin/keys", one(m.KeyCreated), json=body)


def get_key(key_id: str) -> Op[m.Key]:
    return Op("GET", f"/v1/admin/keys/{seg(key_id)}", one(m.Key))


def revoke_key(key_id: str) -> Op[m.Key]:
    return Op("DELETE", f"/v1/admin/keys/{seg(key_id)}", one(m.Key))


# --- registry ------------------------------------------------------------------------------

REGISTRY = "/v1/registry/models"


def list_models() -> Op[list[m.Model]]:
    return Op("GET", REGISTRY, many(m.Model, "models"))


def get_model(name: str) -> Op[m.Model]:
    return Op("GET", f"{REGISTRY}/{seg(name)}", one(m.Model))


def create_model(name: str, fields: Mapping[str, Any]) -> Op[m.Model]:
    return Op("POST", REGISTRY, one(m.Model), json={"name": name, **clean(fields)})


def add_version(name: str, version: str, fields: Mapping[str, Any]) -> Op[m.ModelVersion]:
    body = {"version": version, **clean(fields)}
    return Op("POST", f"{REGISTRY}/{seg(name)}/versions", one(m.ModelVersion), json=body)


def set_alias(name: str, alias: str, version: str) -> Op[dict[str, Any]]:
    path = f"{REGISTRY}/{seg(name)}/aliases/{seg(alias)}"
    return Op("PUT", path, raw_json, json={"version": version})


def set_traffic(name: str, policy: Mapping[str, Any]) -> Op[m.TrafficPolicy]:
    return Op("PUT", f"{REGISTRY}/{seg(name)}/traffic", traffic_of, json=clean(policy))


def patch_traffic(name: str, changes: Mapping[str, Any]) -> Op[m.TrafficPolicy]:
    return Op("PATCH", f"{REGISTRY}/{seg(name)}/traffic", traffic_of, json=clean(changes))


def traffic_of(response: httpx.Response) -> m.TrafficPolicy:
    body = response.json()
    return m.TrafficPolicy.model_validate(body.get("traffic", body))


def model_history(name: str) -> Op[list[m.ModelChange]]:
    return Op("GET", f"{REGISTRY}/{seg(name)}/history", many(m.ModelChange, "history"))


def list_rollouts(name: str) -> Op[list[m.Rollout]]:
    return Op("GET", f"{REGISTRY}/{seg(name)}/rollouts", many(m.Rollout, "rollouts"))


def get_rollout(name: str, rollout_id: str) -> Op[m.Rollout]:
    return Op("GET", f"{REGISTRY}/{seg(name)}/rollouts/{seg(rollout_id)}", one(m.Rollout))


def start_rollout(name: str, fields: Mapping[str, Any]) -> Op[m.Rollout]:
    return Op("POST", f"{REGISTRY}/{seg(name)}/rollouts", one(m.Rollout), json=clean(fields))


def control_rollout(name: str, rollout_id: str, action: str) -> Op[m.Rollout]:
    path = f"{REGISTRY}/{seg(name)}/rollouts/{seg(rollout_id)}/{action}"
    return Op("POST", path, one(m.Rollout))


def feedback(prediction_id: str, fields: Mapping[str, Any]) -> Op[m.Feedback]:
    path = f"/v1/predictions/{seg(prediction_id)}/feedback"
    return Op("POST", path, one(m.Feedback), json=clean(fields))


# --- inference -----------------------------------------------------------------------------


def infer(
    model: str,
    inputs: list[dict[str, Any]],
    version: str | None,
    user_id: str | None,
    parameters: Mapping[str, Any] | None,
) -> Op[m.InferenceResult]:
    path = f"/v2/models/{seg(model)}"
    if version is not None:
        path += f"/versions/{seg(version)}"
    body: dict[str, Any] = {"inputs": inputs}
    if parameters:
        body["parameters"] = dict(parameters)
    headers = {"x-user-id": user_id} if user_id else {}

    def parse(response: httpx.Response) -> m.InferenceResult:
        result = m.InferenceResult.model_validate(response.json())
        result.prediction_id = response.headers.get("x-prediction-id")
        return result

    return Op("POST", path + "/infer", parse, json=body, headers=headers)


def chat(model: str, messages: list[dict[str, Any]], fields: Mapping[str, Any]) -> Op[Any]:
    body = {"model": model, "messages": messages, **clean(fields)}
    return Op("POST", "/v1/chat/completions", raw_json, json=body)


def openai_models() -> Op[list[m.OpenAIModel]]:
    return Op("GET", "/v1/models", many(m.OpenAIModel, "data"))


# --- context -------------------------------------------------------------------------------


def get_user(user_id: str) -> Op[m.UserContext]:
    return Op("GET", f"/v1/context/users/{seg(user_id)}", user_of)


def patch_user(user_id: str, patch: Mapping[str, Any], if_match: str | None) -> Op[m.UserContext]:
    headers = {"content-type": "application/merge-patch+json"}
    if if_match:
        headers["if-match"] = if_match
    return Op("PATCH", f"/v1/context/users/{seg(user_id)}", user_of, json=patch, headers=headers)


def user_of(response: httpx.Response) -> m.UserContext:
    user = m.UserContext.model_validate(response.json())
    user.etag = response.headers.get("etag")
    return user


def erase_user(user_id: str) -> Op[m.ErasureReceipt]:
    return Op("DELETE", f"/v1/context/users/{seg(user_id)}", one(m.ErasureReceipt))


def export_user(user_id: str) -> Op[m.UserExport]:
    return Op("GET", f"/v1/context/users/{seg(user_id)}/export", one(m.UserExport))


def create_session(user_id: str, fields: Mapping[str, Any]) -> Op[m.Session]:
    body = {"user_id": user_id, **clean(fields)}
    return Op("POST", "/v1/context/sessions", one(m.Session), json=body)


def get_session(session_id: str) -> Op[m.Session]:
    return Op("GET", f"/v1/context/sessions/{seg(session_id)}", one(m.Session))


def patch_session(session_id: str, state: Mapping[str, Any]) -> Op[m.Session]:
    headers = {"content-type": "application/merge-patch+json"}
    path = f"/v1/context/sessions/{seg(session_id)}"
    return Op("PATCH", path, one(m.Session), json={"state": dict(state)}, headers=headers)


def add_interaction(
    session_id: str, role: str, content: str, metadata: Mapping[str, Any] | None
) -> Op[m.Interaction]:
    body = clean({"role": role, "content": content, "metadata": metadata})
    path = f"/v1/context/sessions/{seg(session_id)}/interactions"
    return Op("POST", path, one(m.Interaction), json=body)


def interactions(session_id: str, limit: int) -> Op[list[m.Interaction]]:
    path = f"/v1/context/sessions/{seg(session_id)}/interactions"
    return Op("GET", path, many(m.Interaction, "interactions"), params={"limit": limit})


def resolve(
    consumer: str, user_id: str | None, session_id: str | None, handle: str | None
) -> Op[m.ResolvedContext]:
    body = clean(
        {"consumer": consumer, "user_id": user_id, "session_id": session_id, "handle": handle}
    )
    return Op("POST", "/v1/context/resolve", one(m.ResolvedContext), json=body)


def list_policies() -> Op[list[m.ContextPolicy]]:
    return Op("GET", "/v1/context/policies", many(m.ContextPolicy, "policies"))


def get_policy(consumer: str) -> Op[m.ContextPolicy]:
    return Op("GET", f"/v1/context/policies/{seg(consumer)}", one(m.ContextPolicy))


def set_policy(consumer: str, allow: list[str]) -> Op[m.ContextPolicy]:
    path = f"/v1/context/policies/{seg(consumer)}"
    return Op("PUT", path, one(m.ContextPolicy), json={"allow": allow})


def delete_policy(consumer: str) -> Op[None]:
    return Op("DELETE", f"/v1/context/policies/{seg(consumer)}", nothing)


# --- events --------------------------------------------------------------------------------


def list_events(after: int, limit: int, type: str | None, subject: str | None) -> Op[Page[m.Event]]:
    params = clean({"after": after, "limit": limit, "type": type, "subject": subject})

    def parse(response: httpx.Response) -> Page[m.Event]:
        body = response.json()
        events = [m.Event.model_validate(e) for e in body["events"]]
        return Page(events, body["next_after"] if events else None)

    return Op("GET", "/v1/events", parse, params=params)


@overload
def publish(events: dict[str, Any]) -> Op[m.Event]: ...
@overload
def publish(events: list[dict[str, Any]]) -> Op[list[m.Event]]: ...
def publish(events: list[dict[str, Any]] | dict[str, Any]) -> Op[Any]:
    def parse(response: httpx.Response) -> Any:
        body = response.json()
        if isinstance(body, list):
            return [m.Event.model_validate(e) for e in body]
        return m.Event.model_validate(body)

    return Op(
        "POST",
        "/v1/events",
        parse,
        json=events,
        headers={"content-type": "application/cloudevents+json"}
        if isinstance(events, dict)
        else {},
    )


def export_params(
    format: str, type: str | None, subject: str | None, since: str | None
) -> dict[str, Any]:
    return clean({"format": format, "type": type, "subject": subject, "since": since})


def stream_params(type: str | None, subject: str | None, after: int | None) -> dict[str, Any]:
    return clean({"type": type, "subject": subject, "after": after})


def list_subscriptions() -> Op[list[m.Subscription]]:
    return Op("GET", "/v1/subscriptions", many(m.Subscription, "subscriptions"))


def create_subscription(url: str, secret: str, types: list[str] | None) -> Op[m.Subscription]:
    body = clean({"url": url, "secret": secret, "types": types})
    return Op("POST", "/v1/subscriptions", one(m.Subscription), json=body)


def get_subscription(sub_id: str) -> Op[m.Subscription]:
    return Op("GET", f"/v1/subscriptions/{seg(sub_id)}", one(m.Subscription))


def delete_subscription(sub_id: str) -> Op[None]:
    return Op("DELETE", f"/v1/subscriptions/{seg(sub_id)}", nothing)


def replay_subscription(sub_id: str, after: int, until: int | None) -> Op[dict[str, Any]]:
    path = f"/v1/subscriptions/{seg(sub_id)}/replay"
    return Op("POST", path, raw_json, json=clean({"after": after, "until": until}))


# --- audit and monitoring ------------------------------------------------------------------


def list_audit(after: int, limit: int, filters: Mapping[str, Any]) -> Op[Page[m.AuditRecord]]:
    params = {"after": after, "limit": limit, **clean(filters)}

    def parse(response: httpx.Response) -> Page[m.AuditRecord]:
        body = response.json()
        records = [m.AuditRecord.model_validate(r) for r in body["records"]]
        return Page(records, body.get("next_after"))

    return Op("GET", "/v1/audit", parse, params=params)


def list_checkpoints(after: int, limit: int) -> Op[Page[m.AuditCheckpoint]]:
    def parse(response: httpx.Response) -> Page[m.AuditCheckpoint]:
        body = response.json()
        cps = [m.AuditCheckpoint.model_validate(c) for c in body["checkpoints"]]
        return Page(cps, body.get("next_after"))

    params = {"after": after, "limit": limit}
    return Op("GET", "/v1/audit/checkpoints", parse, params=params)


def verify_audit() -> Op[m.AuditVerification]:
    return Op("GET", "/v1/audit/verify", one(m.AuditVerification))


def audit_public_key() -> Op[m.PublicKey]:
    return Op("GET", "/v1/audit/public-key", one(m.PublicKey))


def model_monitoring(name: str) -> Op[m.ModelMonitoring]:
    return Op("GET", f"/v1/monitoring/models/{seg(name)}", one(m.ModelMonitoring))


def slo(window_seconds: int | None) -> Op[m.SloReport]:
    params = clean({"window": window_seconds})
    return Op("GET", "/v1/slo", one(m.SloReport), params=params)
