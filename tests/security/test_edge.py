"""Limits at the edge, against a real ``meshgate serve``: oversized or endless request heads,
stalled bodies and connection hoarding are refused while normal traffic goes on."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Server

EDGE = {
    "MESHGATE_SECURITY__EDGE__HEADER_TIMEOUT_SECONDS": "2",
    "MESHGATE_SECURITY__EDGE__BODY_TIMEOUT_SECONDS": "2",
    "MESHGATE_SECURITY__EDGE__MAX_CONNECTIONS_PER_CLIENT": "48",
    "MESHGATE_SECURITY__EDGE__MAX_REQUESTS_PER_CONNECTION": "3",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    served = Server(EDGE, Path(tmp_path_factory.mktemp("edge")))
    yield served
    served.stop()


async def open_(server: Server) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", server.port)


async def status_of(reader: asyncio.StreamReader, seconds: float = 20) -> int | None:
    """The status of the answer, or None when the server just closed the connection."""
    line = await asyncio.wait_for(reader.readline(), seconds)
    return int(line.split()[1]) if line else None


async def healthy(server: Server, n: int = 5) -> list[float]:
    """n normal requests on fresh connections: every one 200; their latencies."""
    latencies = []
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as client:
        for _ in range(n):
            started = time.perf_counter()
            assert (await client.get("/healthz")).status_code == 200
            latencies.append(time.perf_counter() - started)
    return latencies


async def test_a_header_over_the_limit_is_refused(server: Server) -> None:
    reader, writer = await open_(server)
    writer.write(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * 70_000 + b"\r\n\r\n")
    await writer.drain()
    assert await status_of(reader) == 431
    writer.close()
    await healthy(server)


async def test_a_100_mb_header_is_cut_off_early(server: Server) -> None:
    reader, writer = await open_(server)
    writer.write(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: ")
    sent = 0
    with pytest.raises((ConnectionError, OSError)):
        for _ in range(1600):  # 100 MB, 64 KB at a time
            writer.write(b"a" * 65536)
            await writer.drain()
            sent += 65536
        await reader.read()  # not cut off: whatever comes back, it is not a refusal
        raise AssertionError("the server read a 100 MB header")
    # The socket buffers hold a few MB; the server itself stopped reading at 64 KB.
    assert sent < 20 * 1024 * 1024
    writer.close()
    await healthy(server)


async def test_too_many_headers_are_refused(server: Server) -> None:
    reader, writer = await open_(server)
    lines = b"".join(b"x-h%d: v\r\n" % n for n in range(150))
    writer.write(b"GET /healthz HTTP/1.1\r\nhost: x\r\n" + lines + b"\r\n")
    await writer.drain()
    assert await status_of(reader) == 431
    writer.close()


async def test_slowloris_is_cut_off_while_normal_traffic_goes_on(server: Server) -> None:
    slow = [await open_(server) for _ in range(40)]
    for _, writer in slow:
        writer.write(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")

    async def dribble() -> None:
        for _ in range(40):
            for _, writer in slow:
                if not writer.is_closing():
                    writer.write(b"x-a: b\r\n")
            await asyncio.sleep(0.25)

    trickle = asyncio.create_task(dribble())
    during = await healthy(server, 10)
    statuses = await asyncio.gather(*(status_of(reader, 30) for reader, _ in slow))
    trickle.cancel()
    assert statuses == [408] * 40, statuses
    for reader, _ in slow:  # and closed by the server
        with contextlib.suppress(ConnectionError):
            await asyncio.wait_for(reader.read(), 10)
        assert reader.at_eof() or reader.exception() is not None
    assert len(during) == 10


async def test_a_stalled_body_closes_the_connection(server: Server) -> None:
    reader, writer = await open_(server)
    writer.write(
        b"POST /v1/events HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b'authorization: Bearer nope\r\ncontent-length: 1000\r\n\r\n{"a": '
    )
    await writer.drain()
    started = time.monotonic()
    # The server either answers (the key is refused first) or closes; it never waits forever.
    rest = await asyncio.wait_for(reader.read(), 30)
    assert rest == b"" or rest.startswith(b"HTTP/1.1 401")
    assert time.monotonic() - started < 30
    writer.close()


async def test_one_client_cannot_hold_every_connection(server: Server) -> None:
    held = [await open_(server) for _ in range(48)]
    reader, writer = await open_(server)
    writer.write(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
    assert await status_of(reader) == 503
    for _, w in held:
        w.close()
    writer.close()
    await asyncio.sleep(0.5)
    await healthy(server)


async def test_a_connection_serves_a_bounded_number_of_requests(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=20) as client:
        answers = [await client.get("/healthz") for _ in range(3)]
    assert [a.status_code for a in answers] == [200] * 3
    assert answers[-1].headers.get("connection") == "close"
    assert answers[0].headers.get("connection") != "close"
