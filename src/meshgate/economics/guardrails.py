"""Guardrails: a pipeline of checks per model, on the prompt before the upstream call and on
the answer after it.

Checks: ``pii`` (find personal data; redact reversibly, block or log), ``injection``
(prompt-injection phrases), ``deny_terms``, ``max_input`` (characters of all messages), and
``output_schema`` (the answer must be JSON valid against a JSON Schema). Actions: ``block``
(a 400 naming the check), ``redact`` (pii only) or ``log``. A decision reports the check, the
action and counts per kind, never the text it matched.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import jsonschema
import orjson
from pydantic import Field, field_validator

from meshgate.economics import pii
from meshgate.errors import BadRequest
from meshgate.strictjson import RequestBody

Action = Literal["block", "redact", "log"]


class PiiCheck(RequestBody):
    check: Literal["pii"]
    action: Action = "redact"
    entities: list[Literal[pii.ENTITIES]] = Field(  # type: ignore[valid-type]
        default_factory=lambda: list(pii.ENTITIES),
        min_length=1,
        description=f"Kinds to look for: {', '.join(pii.ENTITIES)}.",
    )


class InjectionCheck(RequestBody):
    check: Literal["injection"]
    action: Literal["block", "log"] = "block"


class DenyTermsCheck(RequestBody):
    check: Literal["deny_terms"]
    action: Literal["block", "log"] = "block"
    terms: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        min_length=1, max_length=1000
    )


class MaxInputCheck(RequestBody):
    check: Literal["max_input"]
    action: Literal["block", "log"] = "block"
    max_chars: int = Field(ge=1, description="Characters of all messages together.")


class OutputSchemaCheck(RequestBody):
    check: Literal["output_schema"]
    action: Literal["block", "log"] = "block"
    schema_: dict[str, Any] = Field(alias="schema", description="A JSON Schema for the answer.")

    @field_validator("schema_")
    @classmethod
    def _parses(cls, schema: dict[str, Any]) -> dict[str, Any]:
        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise ValueError(f"not a valid JSON Schema: {exc.message}") from exc
        return schema


CheckSpec = Annotated[
    PiiCheck | InjectionCheck | DenyTermsCheck | MaxInputCheck | OutputSchemaCheck,
    Field(discriminator="check"),
]


class GuardrailsSet(RequestBody):
    guardrails: list[CheckSpec] = Field(default_factory=list, max_length=50)


@dataclass(frozen=True, slots=True)
class Decision:
    """One check that fired: what it did, and how many of each kind (never the values)."""

    check: str
    action: str
    stage: Literal["input", "output"]
    counts: dict[str, int] = field(default_factory=dict)


class GuardrailBlocked(BadRequest):
    """A guardrail refused the call; the answer names the check."""


INJECTION = re.compile(
    r"\b(?:ignore|disregard|forget|override)\b.{0,40}\b(?:previous|prior|above|earlier|all|your)"
    r"\b.{0,20}\b(?:instructions?|prompts?|rules|directions|guidelines)\b"
    r"|\b(?:reveal|print|show|repeat|leak)\b.{0,30}\b(?:system|hidden|initial)\s+"
    r"(?:prompt|instructions?|message)\b"
    r"|\byou\s+are\s+now\b.{0,40}\b(?:DAN|unrestricted|jailbroken|developer\s+mode)\b"
    r"|\b(?:jailbreak|do\s+anything\s+now)\b"
    r"|<\|im_start\|>|\[/?INST\]|^\s*#{2,}\s*system\b",
    re.IGNORECASE | re.MULTILINE | re.DOTALL,
)


class Redactions:
    """Placeholders given to personal data, and how to put the values back."""

    def __init__(self) -> None:
        self.by_value: dict[str, str] = {}
        self.by_placeholder: dict[str, str] = {}
        self._pattern: re.Pattern[str] | None = None

    def placeholder(self, entity: str, value: str) -> str:
        known = self.by_value.get(value)
        if known is None:
            count = sum(1 for p in self.by_placeholder if p.startswith(f"[{entity.upper()}_"))
            known = f"[{entity.upper()}_{count + 1}]"
            self.by_value[value] = known
            self.by_placeholder[known] = value
            self._pattern = None
        return known

    def __bool__(self) -> bool:
        return bool(self.by_placeholder)

    @property
    def pattern(self) -> re.Pattern[str]:
        if self._pattern is None:
            self._pattern = re.compile("|".join(map(re.escape, self.by_placeholder)))
        return self._pattern

    def restore(self, text: str) -> str:
        return self.pattern.sub(lambda m: self.by_placeholder[m.group()], text)

    def restore_json(self, body: bytes) -> bytes:
        """Inside a JSON document the placeholders are plain; values go in JSON-escaped."""
        escaped = {p: orjson.dumps(v)[1:-1].decode() for p, v in self.by_placeholder.items()}
        text = body.decode()
        return self.pattern.sub(lambda m: escaped[m.group()], text).encode()

    def longest(self) -> int:
        return max(map(len, self.by_placeholder), default=0)


class Pipeline:
    """The compiled checks of one model."""

    def __init__(self, checks: list[Any]):
        self.input = [c for c in checks if not isinstance(c, OutputSchemaCheck)]
        self.output = [c for c in checks if isinstance(c, OutputSchemaCheck)]
        self.validators = [
            jsonschema.validators.validator_for(c.schema_)(c.schema_) for c in self.output
        ]

    def __bool__(self) -> bool:
        return bool(self.input or self.output)

    def check_input(self, request: dict[str, Any]) -> tuple[Redactions, list[Decision], bool]:
        """Runs the input checks on ``request["messages"]``, redacting in place.

        Returns (redactions, decisions, changed); raises :class:`GuardrailBlocked` with the
        decisions so far attached when a blocking check fires."""
        redactions = Redactions()
        decisions: list[Decision] = []
        changed = False
        messages = request.get("messages")
        if not isinstance(messages, list):
            return redactions, decisions, changed
        for check in self.input:
            decision: Decision | None
            if isinstance(check, PiiCheck):
                decision, touched = _pii(check, messages, redactions)
                changed = changed or touched
            else:
                decision = _screen(check, messages)
            if decision is None:
                continue
            decisions.append(decision)
            if decision.action == "block":
                raise _blocked(decision, decisions)
        return redactions, decisions, changed

    def check_output(self, text: str | None) -> list[Decision]:
        decisions = []
        for check, validator in zip(self.output, self.validators, strict=True):
            problem = _schema_problem(validator, text)
            if problem is None:
                continue
            decision = Decision(check.check, check.action, "output", {"violations": 1})
            decisions.append(decision)
            if check.action == "block":
                why = f"the answer does not match the schema: {problem}"
                raise _blocked(decision, decisions, why)
        return decisions


def _blocked(
    decision: Decision, decisions: list[Decision], why: str | None = None
) -> GuardrailBlocked:
    detail = f"blocked by the guardrail {decision.check!r}" + (f": {why}" if why else "")
    error = GuardrailBlocked(
        detail, code="guardrail_blocked", check=decision.check, param="messages"
    )
    error.decisions = decisions  # type: ignore[attr-defined]
    return error


def _texts(messages: list[Any], *, roles: tuple[str, ...] | None = None) -> list[str]:
    out = []
    for message in messages:
        if not isinstance(message, dict) or (roles and message.get("role") not in roles):
            continue
        content = message.get("content")
        if isinstance(content, str):
            out.append(content)
        elif isinstance(content, list):
            out += [
                p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
            ]
    return out


def _pii(
    check: PiiCheck, messages: list[Any], redactions: Redactions
) -> tuple[Decision | None, bool]:
    wanted = frozenset(check.entities)
    counts: Counter[str] = Counter()
    redact = check.action == "redact"

    def scrub(text: str) -> str:
        findings = pii.find(text, wanted)
        counts.update(f.entity for f in findings)
        if not redact or not findings:
            return text
        parts, at = [], 0
        for f in findings:
            parts += [text[at : f.start], redactions.placeholder(f.entity, f.value)]
            at = f.end
        return "".join([*parts, text[at:]])

    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        content = message.get("content")
        if isinstance(content, str):
            new: Any = scrub(content)
        elif isinstance(content, list):
            new = [
                {**p, "text": scrub(p["text"])}
                if isinstance(p, dict) and isinstance(p.get("text"), str)
                else p
                for p in content
            ]
        else:
            continue
        if new != content:
            # A copy: the caller's parsed body may be shared with a retry or a shadow.
            messages[i] = {**message, "content": new}
    if not counts:
        return None, False
    return Decision("pii", check.action, "input", dict(counts)), redact


def _screen(check: Any, messages: list[Any]) -> Decision | None:
    if isinstance(check, MaxInputCheck):
        size = sum(map(len, _texts(messages)))
        if size <= check.max_chars:
            return None
        return Decision(check.check, check.action, "input", {"chars": size})
    # The platform's own context message is not the caller's prompt: screen what callers wrote.
    texts = _texts(messages, roles=("user", "assistant", "tool", "developer", "function"))
    if isinstance(check, InjectionCheck):
        hits = sum(len(INJECTION.findall(t)) for t in texts)
        return Decision(check.check, check.action, "input", {"matches": hits}) if hits else None
    if isinstance(check, DenyTermsCheck):
        pattern = _terms(tuple(check.terms))
        hits = sum(len(pattern.findall(t)) for t in texts)
        return Decision(check.check, check.action, "input", {"matches": hits}) if hits else None
    return None


_TERMS: dict[tuple[str, ...], re.Pattern[str]] = {}


def _terms(terms: tuple[str, ...]) -> re.Pattern[str]:
    pattern = _TERMS.get(terms)
    if pattern is None:
        if len(_TERMS) > 1000:
            _TERMS.clear()
        body = "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True))
        pattern = _TERMS[terms] = re.compile(rf"(?<!\w)(?:{body})(?!\w)", re.IGNORECASE)
    return pattern


def _schema_problem(validator: Any, text: str | None) -> str | None:
    if text is None:
        return "the answer has no text"
    try:
        document = orjson.loads(text)
    except orjson.JSONDecodeError:
        return "the answer is not JSON"
    error = jsonschema.exceptions.best_match(validator.iter_errors(document))
    if error is None:
        return None
    where = "/".join(map(str, error.absolute_path)) or "(root)"
    return f"{where}: {error.message}"[:300]
