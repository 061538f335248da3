"""How a passed-through stream ends: complete, failed upstream, or left by the client."""

from __future__ import annotations

from collections.abc import AsyncIterator

import orjson

from meshgate.models.errors import UpstreamUnavailable
from meshgate.models.inference import Relay


async def chunks(fail: bool = False) -> AsyncIterator[bytes]:
    yield b"data: 1\n\n"
    if fail:
        raise UpstreamUnavailable("upstream connection failed: reset")
    yield b"data: 2\n\n"


async def test_a_complete_stream_ends_ok_once() -> None:
    ends: list[str] = []
    relay = Relay(chunks(), ends.append)
    assert [c async for c in relay] == [b"data: 1\n\n", b"data: 2\n\n"]
    await relay.aclose()
    assert ends == ["ok"]


async def test_an_upstream_failure_mid_stream_is_told_as_a_last_event() -> None:
    ends: list[str] = []
    received = [c async for c in Relay(chunks(fail=True), ends.append)]
    assert received[0] == b"data: 1\n\n" and len(received) == 2
    error = orjson.loads(received[1].removeprefix(b"data: "))["error"]
    assert error["message"] == "upstream connection failed: reset"
    assert ends == ["error"]


async def test_a_stream_closed_before_or_while_read_is_a_disconnection() -> None:
    ends: list[str] = []
    await Relay(chunks(), ends.append).aclose()  # never read: the upstream still gets closed
    relay = Relay(chunks(), ends.append)
    await anext(relay)
    await relay.aclose()
    assert ends == ["disconnected", "disconnected"]
