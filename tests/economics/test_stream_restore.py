"""A placeholder split over several streamed events still comes back whole."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson

from meshgate.economics.guardrails import Redactions
from meshgate.economics.streams import StreamWatch


def event(content: str | None, finish: str | None = None) -> bytes:
    delta = {} if content is None else {"content": content}
    body = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta,
            "finish_reason": finish}]}  # fmt: skip
    return b"data: " + orjson.dumps(body) + b"\n\n"


async def chunks(parts: list[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def relayed(parts: list[bytes], redactions: Redactions) -> str:
    watch = StreamWatch(redactions)
    text = []
    raw = b"".join([c async for c in watch.relay(chunks(parts))])
    for line in raw.split(b"\n\n"):
        if line.startswith(b"data: {"):
            for choice in orjson.loads(line[6:])["choices"]:
                text.append(choice["delta"].get("content") or "")
    return "".join(text)


async def test_split_placeholders_are_restored() -> None:
    r = Redactions()
    email = r.placeholder("email", "jane@example.com")
    card = r.placeholder("credit_card", "4111 1111 1111 1111")
    assert (email, card) == ("[EMAIL_1]", "[CREDIT_CARD_1]")
    whole = event("Write to [EM") + event("AIL_1] now; card [CREDIT_") + event("CARD_1]")
    # One event split across two network chunks, too.
    parts = [whole[:30], whole[30:], event(None, "stop"), b"data: [DONE]\n\n"]
    assert await relayed(parts, r) == "Write to jane@example.com now; card 4111 1111 1111 1111"


async def test_a_bracket_that_is_no_placeholder_passes_and_a_tail_is_flushed() -> None:
    r = Redactions()
    r.placeholder("email", "a@b.de")
    parts = [event("list [1, 2] and [EMAIL_"), event("1] [open")]
    assert await relayed(parts, r) == "list [1, 2] and a@b.de [open"
