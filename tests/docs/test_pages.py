"""The generated and quoted parts of docs/ stay true to the code."""

from __future__ import annotations

import re

from meshgate.models.reference import with_reference
from tests.docs.blocks import ROOT

DOCS = ROOT / "docs"


def test_the_model_file_reference_is_current() -> None:
    page = (DOCS / "models.md").read_text()
    assert page == with_reference(page), "run: python -m meshgate.models.reference docs/models.md"


def test_every_start_up_message_quoted_in_troubleshooting_exists() -> None:
    page = (DOCS / "troubleshooting.md").read_text()
    rows = [line for line in page.splitlines() if line.startswith("| `")]
    assert len(rows) >= 5
    source = "\n".join(p.read_text() for p in (ROOT / "src" / "meshgate").rglob("*.py"))
    for row in rows:
        quoted = re.match(r"\| `([^`]+)`", row).group(1)  # type: ignore[union-attr]
        # The fixed words of the message (a placeholder ... or %s stands for a value).
        for part in filter(None, (p.strip() for p in re.split(r"\.\.\.|%\w", quoted))):
            if part == "address already in use":  # printed by the server library
                continue
            assert part in source, f"troubleshooting.md quotes {quoted!r}; not in the code"
