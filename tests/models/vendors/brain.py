"""The one behaviour every fake vendor shares, on a neutral conversation.

Each fake reads its own vendor's wire format into an :class:`Ask` (with its own code, not
Meshgate's translations), asks :func:`answer`, and writes the :class:`Answer` back in its own
wire format. So one scripted behaviour looks the same through every vendor, and a test can
expect the same result whichever provider serves a model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson


@dataclass
class Turn:
    role: str  # user, assistant or tool
    text: str = ""
    images: int = 0
    tool_result: str | None = None


@dataclass
class Ask:
    system: str | None
    turns: list[Turn]
    tools: list[str] = field(default_factory=list)
    forced_tool: str | None = None
    json: bool = False
    max_tokens: int | None = None


@dataclass
class Answer:
    text: str | None
    tool: tuple[str, str, dict[str, Any]] | None  # (id, name, arguments)
    stop: str  # end, tool or length
    input_tokens: int
    output_tokens: int
    cached_tokens: int = 4

    def pieces(self) -> list[str]:
        """The text as a stream sends it: word by word."""
        return re.findall(r"\S+\s*", self.text or "")

    def argument_pieces(self) -> list[str]:
        raw = orjson.dumps(self.tool[2]).decode() if self.tool else ""
        half = len(raw) // 2
        return [raw[:half], raw[half:]]


def answer(ask: Ask) -> Answer:
    last = ask.turns[-1] if ask.turns else Turn("user")
    tool = None
    text: str | None
    if last.role == "tool":
        text = f"the tool said {last.tool_result}"
    elif ask.forced_tool is not None:
        tool = ("call_1", ask.forced_tool, {"echo": last.text})
        text = None
    elif "weather" in last.text and "get_weather" in ask.tools:
        tool = ("call_1", "get_weather", {"city": "Paris"})
        text = None
    elif ask.json:
        text = orjson.dumps({"echo": last.text}).decode()
    else:
        text = (
            f"system={ask.system or '-'} turns={len(ask.turns)} "
            f"images={last.images} said={last.text}"
        )
    stop = "tool" if tool else "end"
    if text is not None and ask.max_tokens is not None and ask.max_tokens <= 3:
        text, stop = " ".join(text.split()[: ask.max_tokens]), "length"
    output = len(text.split()) if text else 6
    return Answer(text, tool, stop, 20 + 5 * len(ask.turns), output)
