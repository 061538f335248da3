"""Which version serves a request: weighted split, sticky by user or session.

Sticky assignment is weighted rendezvous hashing: every (caller, version) pair hashes to a
uniform number ``u`` in (0, 1) and the version with the smallest ``-ln(u) / weight`` wins.
That gives each version exactly its share of callers, keeps a caller on the same version
while the split is unchanged, and when one version's weight rises while the others shrink in
proportion, callers only move *to* that version. (A cumulative ``[0, 100)`` bucket layout
has the first two properties but, with three or more versions, shifts callers between the
versions whose weights did not rise.)
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

SCALE = float(1 << 64)


@dataclass(frozen=True, slots=True)
class Split:
    """A traffic split compiled once per registry refresh, used on every request."""

    model: str
    versions: tuple[str, ...]
    weights: tuple[float, ...]
    rand: Callable[[], float] = random.random

    @classmethod
    def of(cls, model: str, split: dict[str, int]) -> Split:
        live = sorted((v, w) for v, w in split.items() if w > 0)
        return cls(model, tuple(v for v, _ in live), tuple(float(w) for _, w in live))

    def pick(self, key: str | None) -> str:
        """The version for a caller ``key`` (user or session id); random when ``key`` is None."""
        if len(self.versions) == 1:
            return self.versions[0]
        if key is None:
            return self._random()
        best, best_score = self.versions[0], math.inf
        for version, weight in zip(self.versions, self.weights, strict=True):
            score = -math.log(unit(f"{self.model}\x00{version}\x00{key}")) / weight
            if score < best_score:
                best, best_score = version, score
        return best

    def _random(self) -> str:
        point = self.rand() * sum(self.weights)
        for version, weight in zip(self.versions, self.weights, strict=True):
            point -= weight
            if point < 0:
                return version
        return self.versions[-1]


def unit(text: str) -> float:
    """A stable hash of ``text`` as a float in (0, 1), the same in every process."""
    digest = hashlib.blake2b(text.encode(), digest_size=8).digest()
    return (int.from_bytes(digest, "big") + 0.5) / SCALE


def fallback_chain(primary: str, fallback: Sequence[str]) -> list[str]:
    """The primary first, then each fallback once."""
    chain = [primary]
    chain += [v for v in fallback if v not in chain]
    return chain
