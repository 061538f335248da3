"""Request and response shapes of the context routes, as the OpenAPI document shows them.

Requests are validated with these models; responses are built from the records directly and
these models only document them (no second validation on the hot path).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from meshgate.context.model import CHANNELS, ID_PATTERN, ROLES
from meshgate.context.policy import MAX_PATHS, PATH_PATTERN
from meshgate.strictjson import RequestBody

Channel = Literal[CHANNELS]  # type: ignore[valid-type]
Role = Literal[ROLES]  # type: ignore[valid-type]


class SessionCreate(RequestBody):
    user_id: str = Field(pattern=ID_PATTERN)
    channel: Channel = "api"
    ttl_seconds: int | None = Field(
        None, ge=1, le=10 * 365 * 86400, description="Default from the configuration."
    )
    state: dict[str, Any] | None = Field(None, description="Free-form state of the session.")


class InteractionCreate(RequestBody):
    role: Role
    content: str
    metadata: dict[str, Any] | None = None


class ResolveRequest(RequestBody):
    consumer: str = Field(pattern=ID_PATTERN, examples=["model:support-chat"])
    user_id: str | None = Field(None, pattern=ID_PATTERN)
    session_id: str | None = Field(None, pattern=ID_PATTERN)
    handle: str | None = Field(
        None,
        max_length=512,
        description="Instead of session_id: the context handle a service got in its baggage.",
    )


class PolicyPut(RequestBody):
    allow: list[Annotated[str, Field(json_schema_extra={"pattern": PATH_PATTERN})]] = Field(
        max_length=MAX_PATHS,
        description="Paths the consumer may see; everything else is denied.",
        examples=[["preferences.language", "attributes.*", "interactions.last:5"]],
    )


class UserOut(BaseModel):
    user_id: str
    attributes: dict[str, Any]
    preferences: dict[str, Any]
    updated_at: str
    version: int = Field(description="Also the ETag, quoted.")


class SessionOut(BaseModel):
    session_id: str
    user_id: str
    channel: Channel
    ttl_seconds: int
    state: dict[str, Any]
    created_at: str
    expires_at: str


class SessionCreated(SessionOut):
    handle: str = Field(description="Opaque signed reference to the session, for baggage.")


class SessionRead(SessionOut):
    interactions_count: int


class InteractionOut(BaseModel):
    role: Role
    content: str
    metadata: dict[str, Any]
    time: str


class InteractionsOut(BaseModel):
    session_id: str
    interactions: list[InteractionOut] = Field(description="Newest last.")


class ResolveOut(BaseModel):
    consumer: str
    user_id: str | None
    session_id: str | None
    context: dict[str, Any] = Field(description="Exactly what the consumer's policy allows.")


class SessionExport(SessionOut):
    interactions: list[InteractionOut]


class ExportOut(BaseModel):
    user_id: str
    exported_at: str
    profile: UserOut | None
    sessions: list[SessionExport]


class ErasureReceipt(BaseModel):
    user_id: str
    erased_at: str
    records: int = Field(description="Profile, sessions and interactions removed.")
    event_keys_shredded: int = Field(description="Data keys of the user's events destroyed.")


class PolicyOut(BaseModel):
    consumer: str
    allow: list[str]
    source: Literal["api", "config", "registry"]


class PoliciesOut(BaseModel):
    policies: list[PolicyOut]


def documented(model: type[BaseModel], status: int = 200) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": model}}
