"""Context policies: which parts of a user's context a consumer may see. Deny by default.

A policy is a list of ``allow`` paths:

- ``attributes.*``, ``preferences.*``: the whole section;
- ``attributes.tier``, ``preferences.address.city``: one member (nested members by dots);
- ``session.*``, ``session.channel``, ``session.state.step``: the session's fields;
- ``interactions.last:5``: the five newest interactions (``interactions.*``: all kept).

A policy is compiled once into a selection tree; :func:`compile_policy` keeps compiled
policies, so the hot path never parses one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from meshgate.context.model import InvalidContext, Json, SessionView, UserProfile

ALL: dict[str, Any] = {}
"""A selection node that takes the whole value (identity-compared, never mutated)."""
Tree = dict[str, Any]

SECTIONS = ("attributes", "preferences", "session")
SEGMENT = re.compile(r"[A-Za-z0-9_\-]{1,64}")
LAST = re.compile(r"last:([1-9][0-9]{0,4})")
MAX_PATHS = 100
PATH_PATTERN = (
    r"^(?:(?:attributes|preferences|session)\.(?:[A-Za-z0-9_-]{1,64}\.)*(?:[A-Za-z0-9_-]{1,64}|\*)"
    r"|interactions\.(?:\*|last:[1-9][0-9]{0,4}))$"
)
"""The grammar :func:`build` holds every path to, for the document (JSON Schema, ECMA regex)."""
_CACHE_LIMIT = 1024


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    allow: tuple[str, ...]
    sections: tuple[tuple[str, Tree], ...]
    last: int
    """How many newest interactions the consumer sees (0: none)."""

    @property
    def needs_profile(self) -> bool:
        return any(name != "session" for name, _ in self.sections)

    @property
    def needs_session(self) -> bool:
        return self.last > 0 or any(name == "session" for name, _ in self.sections)

    def apply(self, profile: UserProfile | None, view: SessionView | None) -> Json:
        """Exactly the allowed parts; a section shows only when its record exists."""
        out: Json = {}
        for name, tree in self.sections:
            if name == "session":
                if view is not None:
                    out["session"] = _select(view.session.to_api(), tree)
            elif profile is not None:
                out[name] = _select(getattr(profile, name), tree)
        if self.last and view is not None:
            out["interactions"] = [i.to_api() for i in view.interactions[-self.last :]]
        return out


def _select(value: Any, tree: Tree) -> Any:
    if tree is ALL:
        return value
    if not isinstance(value, dict):
        return {}
    out = {}
    for key, sub in tree.items():
        if key in value:
            picked = _select(value[key], sub)
            if sub is ALL or picked:
                out[key] = picked
    return out


def _add(tree: Tree, parts: list[str]) -> Tree:
    """Add one path to a tree; returns the (possibly replaced) tree."""
    if tree is ALL:
        return ALL
    if not parts or parts == ["*"]:
        return ALL
    head, rest = parts[0], parts[1:]
    tree[head] = _add(tree.get(head, {}), rest)
    return tree


def _parse(path: Any, history_limit: int) -> tuple[str, list[str]] | int:
    if not isinstance(path, str) or not path:
        raise InvalidContext(
            f"a policy path must be a non-empty string, not {path!r}", param="allow"
        )
    section, _, rest = path.partition(".")
    if section == "interactions":
        if rest == "*":
            return history_limit
        match = LAST.fullmatch(rest)
        if not match:
            raise InvalidContext(
                f"{path!r}: interactions are allowed as 'interactions.last:N' (N >= 1) or "
                "'interactions.*'",
                param="allow",
            )
        return min(int(match.group(1)), history_limit)
    if section not in SECTIONS or not rest:
        raise InvalidContext(
            f"{path!r}: a path starts with attributes., preferences., session. or interactions.",
            param="allow",
        )
    parts = rest.split(".")
    for i, part in enumerate(parts):
        if not (SEGMENT.fullmatch(part) or (part == "*" and i == len(parts) - 1)):
            raise InvalidContext(
                f"{path!r}: {part!r} is not a member name ('*' only at the end)", param="allow"
            )
    return section, parts


def build(allow: list[str] | tuple[str, ...], history_limit: int) -> CompiledPolicy:
    """Validate and compile; raises ``InvalidContext`` naming the first bad path."""
    if not isinstance(allow, list | tuple):
        raise InvalidContext("'allow' must be a list of paths", param="allow")
    if len(allow) > MAX_PATHS:
        raise InvalidContext(f"a policy has at most {MAX_PATHS} paths", param="allow")
    trees: dict[str, Tree] = {}
    last = 0
    for path in allow:
        parsed = _parse(path, history_limit)
        if isinstance(parsed, int):
            last = max(last, parsed)
        else:
            section, parts = parsed
            trees[section] = _add(trees.get(section, {}), parts)
    sections = tuple((s, trees[s]) for s in SECTIONS if s in trees)
    return CompiledPolicy(tuple(allow), sections, last)


class PolicyCompiler:
    """Compiled policies by their allow list: each distinct list is parsed once."""

    def __init__(self, history_limit: int):
        self.history_limit = history_limit
        self._compiled: dict[tuple[str, ...], CompiledPolicy] = {}

    def compile(self, allow: list[str] | tuple[str, ...]) -> CompiledPolicy:
        key = allow if isinstance(allow, tuple) else tuple(allow)
        try:
            policy = self._compiled.get(key)
        except TypeError:  # an unhashable member: not a path, build() names it
            return build(key, self.history_limit)
        if policy is None:
            policy = build(key, self.history_limit)
            if len(self._compiled) >= _CACHE_LIMIT:
                self._compiled.clear()
            self._compiled[key] = policy
        return policy
