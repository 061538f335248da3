"""The targets of the issues, checked against this run's figures, for the head of the report."""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench.report import table


@dataclass(frozen=True)
class Target:
    name: str
    measured: str
    met: bool | None


TARGETS: list[Target] = []


def check(name: str, measured: str, value: float, limit: float, *, at_least: bool) -> None:
    """Record one target; a figure that could not be measured is neither met nor missed."""
    met = None if math.isnan(value) else (value >= limit if at_least else value <= limit)
    TARGETS.append(Target(name, measured, met))


def render() -> str:
    if not TARGETS:
        return ""
    verdict = {True: "met", False: "**missed**", None: "not measured"}
    rows = [[t.name, t.measured, verdict[t.met]] for t in TARGETS]
    return "## Targets\n\n" + table(["target", "this run", ""], rows)
