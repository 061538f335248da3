"""The CloudEvents 1.0 envelope of every event, with the ``sequence`` extension.

An :class:`Event` is what producers publish and consumers read; a :class:`Record` is what a
log backend stores: the same attributes plus the tenant, the owner of any personal part and
that part still encrypted. Validation is strict so a malformed integration event is refused
with the name of the offending attribute instead of being stored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from meshgate.errors import ValidationFailed

SPECVERSION = "1.0"
PLATFORM_PREFIX = "meshgate."
ERASED: dict[str, Any] = {"erased": True}
MAX_ID_LEN = 256
MAX_TYPE_LEN = 256

# CloudEvents: attribute names are lowercase ASCII letters or digits.
_ATTRIBUTE_NAME = re.compile(r"^[a-z0-9]{1,20}$")
# Dot-separated non-empty tokens, so a type is also a valid NATS subject suffix.
TYPE_PATTERN = r"^[A-Za-z0-9_:/-]+(\.[A-Za-z0-9_:/-]+)*$"
_TYPE = re.compile(TYPE_PATTERN)
# RFC 3339 with a mandatory offset, as CloudEvents requires for ``time``.
_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$", re.IGNORECASE
)
_CORE = {"specversion", "id", "source", "type", "subject", "time", "datacontenttype", "data"}
_RESERVED = {"sequence", "tenant", "data_base64"}
# A URI-reference: no whitespace, no control characters.
_URI_REFERENCE = re.compile(r"^[^\s\x00-\x1f\x7f]+$")


def now() -> datetime:
    return datetime.now(UTC)


def format_time(moment: datetime) -> str:
    text = moment.astimezone(UTC).isoformat(timespec="microseconds")
    return text.replace("+00:00", "Z")


def parse_time(text: str, field_name: str = "time") -> datetime:
    if not isinstance(text, str) or not _RFC3339.match(text):
        raise ValidationFailed(
            f"'{field_name}' must be an RFC 3339 timestamp with an offset", field=field_name
        )
    try:
        return datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError as exc:
        raise ValidationFailed(f"'{field_name}': {exc}", field=field_name) from exc


@dataclass(frozen=True, slots=True)
class Event:
    """One event as producers and consumers see it."""

    id: str
    source: str
    type: str
    time: datetime
    tenant: str
    data: Any = None
    subject: str | None = None
    datacontenttype: str = "application/json"
    sequence: int = 0
    user_id: str | None = None
    """Set on the event ``publish`` returns; reads only know the owner's pseudonym."""
    personal: Any = None
    """The personal part in clear, ``ERASED`` once the user's key is destroyed, or None."""
    extensions: dict[str, str | int | bool] = field(default_factory=dict)

    def to_cloudevent(self) -> dict[str, Any]:
        """Structured-mode CloudEvents JSON; the personal part is shown under ``data``."""
        body: dict[str, Any] = {
            "specversion": SPECVERSION,
            "id": self.id,
            "source": self.source,
            "type": self.type,
            "time": format_time(self.time),
            "datacontenttype": self.datacontenttype,
            "sequence": self.sequence,
        }
        if self.subject is not None:
            body["subject"] = self.subject
        body.update(self.extensions)
        data = self.data
        if self.personal is not None:
            data = {**(data or {}), "personal": self.personal}
        body["data"] = data
        return body


@dataclass(frozen=True, slots=True)
class Record:
    """An event as a log backend stores it: the personal part is ciphertext."""

    tenant: str
    id: str
    source: str
    type: str
    time: str
    subject: str | None = None
    datacontenttype: str = "application/json"
    data: Any = None
    owner: str | None = None
    """Pseudonym of the user the personal part belongs to (never the user id itself)."""
    personal: str | None = None
    """base64 of nonce + AES-GCM ciphertext, or None."""
    extensions: dict[str, str | int | bool] = field(default_factory=dict)
    sequence: int = 0

    def dumps(self) -> bytes:
        return orjson.dumps(
            {
                "tenant": self.tenant,
                "id": self.id,
                "source": self.source,
                "type": self.type,
                "time": self.time,
                "subject": self.subject,
                "datacontenttype": self.datacontenttype,
                "data": self.data,
                "owner": self.owner,
                "personal": self.personal,
                "extensions": self.extensions,
            }
        )

    @classmethod
    def loads(cls, raw: bytes | str, sequence: int) -> Record:
        values = orjson.loads(raw)
        return cls(**{k: v for k, v in values.items() if k in _RECORD_FIELDS}, sequence=sequence)

    def with_sequence(self, sequence: int) -> Record:
        # Spelled out: dataclasses.replace costs several times more on the append path.
        return Record(
            self.tenant,
            self.id,
            self.source,
            self.type,
            self.time,
            self.subject,
            self.datacontenttype,
            self.data,
            self.owner,
            self.personal,
            self.extensions,
            sequence,
        )

    @property
    def dedup_key(self) -> str:
        """A producer's duplicate is the same (source, id) in the same tenant."""
        return f"{self.tenant}\x1f{self.source}\x1f{self.id}"


_RECORD_FIELDS = frozenset(Record.__dataclass_fields__) - {"sequence"}


def check_type(value: Any, *, integration: bool = False) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_TYPE_LEN:
        raise ValidationFailed("'type' must be a non-empty string", field="type")
    if not _TYPE.match(value):
        raise ValidationFailed(
            "'type' is dot-separated words of letters, digits and _ : / - only", field="type"
        )
    if integration and value.startswith(PLATFORM_PREFIX):
        raise ValidationFailed(
            f"'type' must not start with '{PLATFORM_PREFIX}': those types are the platform's",
            field="type",
        )
    return value


def _text(envelope: dict[str, Any], name: str, *, required: bool, limit: int = 1024) -> Any:
    value = envelope.get(name)
    if value is None:
        if required:
            raise ValidationFailed(f"'{name}' is required", field=name)
        return None
    if not isinstance(value, str) or not value or len(value) > limit:
        raise ValidationFailed(
            f"'{name}' must be a non-empty string of at most {limit} characters", field=name
        )
    return value


def parse_integration_event(envelope: Any, *, tenant: str) -> Record:
    """Validate a structured CloudEvent posted by a client and turn it into a record."""
    if not isinstance(envelope, dict):
        raise ValidationFailed("the body must be a JSON object (a CloudEvent)", field="body")
    if envelope.get("specversion") != SPECVERSION:
        raise ValidationFailed("'specversion' must be \"1.0\"", field="specversion")
    event_id = _text(envelope, "id", required=True, limit=MAX_ID_LEN)
    source = _text(envelope, "source", required=True)
    if not _URI_REFERENCE.match(source):
        raise ValidationFailed("'source' must be a URI-reference (no spaces)", field="source")
    check_type(envelope.get("type"), integration=True)
    subject = _text(envelope, "subject", required=False)
    time = envelope.get("time")
    time_text = format_time(parse_time(time) if time is not None else now())
    content_type = _text(envelope, "datacontenttype", required=False, limit=128)
    content_type = content_type or "application/json"
    if "data_base64" in envelope:
        raise ValidationFailed("'data_base64' is not accepted; send JSON 'data'", field="data")
    data = envelope.get("data")
    if not content_type.startswith("application/json") and not isinstance(data, str | None):
        raise ValidationFailed(
            "'data' must be a string unless 'datacontenttype' is JSON", field="data"
        )
    extensions: dict[str, str | int | bool] = {}
    for name, value in envelope.items():
        if name in _CORE or name == "specversion":
            continue
        if name in _RESERVED:
            raise ValidationFailed(f"'{name}' is set by the platform", field=name)
        if not _ATTRIBUTE_NAME.match(name):
            raise ValidationFailed(
                f"'{name}': extension names are 1-20 lowercase letters or digits", field=name
            )
        if not isinstance(value, str | int | bool) or value is None:
            raise ValidationFailed(f"'{name}' must be a string, integer or boolean", field=name)
        if name == "dataschema" and not (
            isinstance(value, str) and value and _URI_REFERENCE.match(value)
        ):
            raise ValidationFailed("'dataschema' must be a URI", field=name)
        extensions[name] = value
    return Record(
        tenant=tenant,
        id=event_id,
        source=source,
        type=envelope["type"],
        time=time_text,
        subject=subject,
        datacontenttype=content_type,
        data=data,
        extensions=extensions,
    )
