"""The records of the Context Mesh and the errors its backends and service raise.

Records are plain frozen dataclasses: backends store them, the service shapes them for the
API. Times are seconds since the epoch (float); the API renders them as RFC 3339.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from meshgate.errors import BadRequest, NotFound, PreconditionFailed, ValidationFailed

Json = dict[str, Any]

# Ids end up inside storage keys: a closed alphabet keeps them from colliding or escaping.
ID_PATTERN = r"^[A-Za-z0-9._@+=\-:]{1,128}$"
_ID = re.compile(ID_PATTERN)
CHANNELS = ("web", "mobile", "voice", "api")
ROLES = ("system", "user", "assistant", "tool")


class ContextNotFound(NotFound):
    """A user, session or policy that does not exist (or belongs to another tenant)."""


class StaleVersion(PreconditionFailed):
    """``If-Match`` named a version that is no longer the current one."""


class InvalidContext(ValidationFailed):
    """A patch, interaction or policy that breaks a rule; nothing was written."""


class BadHandle(BadRequest):
    """A context handle that was not issued by this deployment or was altered."""


def check_id(kind: str, value: str) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise InvalidContext(
            f"{kind} must be 1-128 characters of letters, digits and ._@+=-:", param=kind
        )
    return value


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class UserProfile:
    user_id: str
    attributes: Json
    preferences: Json
    version: int
    updated_at: float

    def to_api(self) -> Json:
        return {
            "user_id": self.user_id,
            "attributes": self.attributes,
            "preferences": self.preferences,
            "updated_at": iso(self.updated_at),
            "version": self.version,
        }


@dataclass(frozen=True, slots=True)
class Session:
    session_id: str
    user_id: str
    channel: str
    ttl_seconds: int
    state: Json
    created_at: float
    expires_at: float

    def to_api(self) -> Json:
        return {
            "session_id": self.session_id,
            "user_id": self.user_id,
            "channel": self.channel,
            "ttl_seconds": self.ttl_seconds,
            "state": self.state,
            "created_at": iso(self.created_at),
            "expires_at": iso(self.expires_at),
        }


@dataclass(frozen=True, slots=True)
class Interaction:
    role: str
    content: str
    metadata: Json
    time: float

    def to_api(self) -> Json:
        return {
            "role": self.role,
            "content": self.content,
            "metadata": self.metadata,
            "time": iso(self.time),
        }

    def to_record(self) -> Json:
        return {
            "role": self.role,
            "content": self.content,
            "metadata": self.metadata,
            "time": self.time,
        }

    @classmethod
    def from_record(cls, r: Json) -> Interaction:
        return cls(r["role"], r["content"], r["metadata"], r["time"])


@dataclass(frozen=True, slots=True)
class SessionView:
    """A session with its newest interactions: what the hot path reads in one go."""

    session: Session
    interactions: tuple[Interaction, ...]


@dataclass(slots=True)
class UserExport:
    profile: UserProfile | None
    sessions: list[SessionView] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.profile is None and not self.sessions


@dataclass(frozen=True, slots=True)
class Erased:
    """What a backend removed for one user."""

    records: int
    session_ids: tuple[str, ...]
