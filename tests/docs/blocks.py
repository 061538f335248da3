"""The code blocks of the README and of every page under docs/, as the harness runs them.

A fenced block runs when its info string starts with ``sh``, ``bash`` or ``python``; any other
language (``yaml``, ``json``, ``text``, none) is shown, not run. A block that is meant to be
read but not run (a command that starts a server, a placeholder to fill in) says so with the
word ``norun`` after its language: ```` ```sh norun ````. docs/writing-docs.md says the same
for writers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RUNNABLE = {"sh": "shell", "bash": "shell", "python": "python"}
FENCE = re.compile(r"^```([^\n`]*)\n(.*?)^```[ \t]*$", re.M | re.S)


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    kind: str  # "shell" or "python"
    code: str

    @property
    def name(self) -> str:
        return f"{self.page}:{self.line}"


def pages() -> list[Path]:
    """The README and every docs/*.md: a page added later is picked up without a change here."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks_of(page: Path) -> list[Block]:
    text = page.read_text()
    found = []
    for match in FENCE.finditer(text):
        words = match.group(1).split()
        if not words or words[0] not in RUNNABLE or "norun" in words[1:]:
            continue
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(str(page.relative_to(ROOT)), line, RUNNABLE[words[0]], match.group(2)))
    return found
