"""The HTTP transport providers use: one shared aiohttp session, replaceable in tests.

aiohttp's client measured about 15 times httpx's throughput as a pass-through on this kind of
machine, so the hot path uses it. Driver errors become :mod:`meshgate.models.errors` here,
so providers never see aiohttp.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Protocol

import aiohttp

from meshgate.models.errors import UpstreamTimedOut, UpstreamUnavailable
from meshgate.security.egress import EgressPolicy, guarded_connector

log = logging.getLogger("meshgate.models")


class HttpResponse(Protocol):
    status: int

    async def read(self) -> bytes: ...
    def chunks(self) -> AsyncIterator[bytes]: ...
    def close(self) -> None:
        """Drop the connection (the caller left before the end)."""
        ...

    def release(self) -> None:
        """Return a fully read connection to the pool."""
        ...


class HttpTransport(Protocol):
    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], read_timeout: float
    ) -> HttpResponse: ...
    async def close(self) -> None: ...


class _AiohttpResponse:
    __slots__ = ("_resp", "status")

    def __init__(self, resp: aiohttp.ClientResponse):
        self._resp = resp
        self.status = resp.status

    async def read(self) -> bytes:
        try:
            return await self._resp.read()
        except TimeoutError as exc:
            raise UpstreamTimedOut("the upstream stopped sending") from exc
        except aiohttp.ClientError as exc:
            log.warning("upstream connection failed: %s", exc)
            raise UpstreamUnavailable("upstream connection failed") from exc
        finally:
            self._resp.release()

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._resp.content.iter_any():
                yield chunk
        except TimeoutError as exc:
            raise UpstreamTimedOut("the upstream stopped sending") from exc
        except aiohttp.ClientError as exc:
            log.warning("upstream connection failed: %s", exc)
            raise UpstreamUnavailable("upstream connection failed") from exc

    def close(self) -> None:
        self._resp.close()

    def release(self) -> None:
        self._resp.release()


@functools.lru_cache(maxsize=64)
def _timeouts(seconds: float) -> aiohttp.ClientTimeout:
    # Streams may last long: the limit is on connecting and on silence, not on the total.
    return aiohttp.ClientTimeout(total=None, sock_connect=seconds, sock_read=seconds)


class AiohttpTransport:
    """One connection pool for every upstream of the process, behind the egress policy."""

    def __init__(self, *, limit: int = 256, egress: EgressPolicy | None = None):
        self._limit = limit
        self._egress = egress or EgressPolicy([])
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            # Created lazily: a ClientSession must be made inside the running loop.
            self._session = aiohttp.ClientSession(
                connector=guarded_connector(self._egress, limit=self._limit, ttl_dns_cache=300),
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def post(
        self, url: str, body: bytes, headers: Mapping[str, str], read_timeout: float
    ) -> HttpResponse:
        try:
            resp = await self.session.post(
                url, data=body, headers=headers, timeout=_timeouts(read_timeout)
            )
        except TimeoutError as exc:
            raise UpstreamTimedOut(f"no answer from the upstream within {read_timeout:g}s") from exc
        except aiohttp.ClientError as exc:
            # The driver's message names addresses; the caller gets none, the log gets it all.
            log.warning("cannot reach the upstream %s: %s", url, exc)
            raise UpstreamUnavailable("cannot reach the upstream") from exc
        return _AiohttpResponse(resp)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
