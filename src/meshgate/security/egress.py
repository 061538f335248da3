"""The egress policy: where webhooks and providers may connect.

A URL a tenant gives (a webhook, a provider's base URL) may reach only public addresses:
loopback, link-local (cloud metadata), private, shared, multicast, reserved and unspecified
addresses are refused, unless the operator allow-lists the host name or a range
(``security.egress_allow``). The URL is checked when it is registered (a clear 4xx), and every
connection is checked again on the address actually dialled (:func:`guarded_connector`), so a
name that resolves to a public address at registration and to an internal one later (DNS
rebinding) is still refused.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from meshgate.errors import BadRequest

log = logging.getLogger("meshgate.security")
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
RESOLVE_SECONDS = 3.0


class EgressRefused(BadRequest):
    """A URL points at an address the platform does not connect to."""


class EgressPolicy:
    def __init__(self, allow: list[str]):
        hosts, networks = set(), []
        for entry in allow:
            try:
                networks.append(ipaddress.ip_network(entry.strip(), strict=False))
            except ValueError:
                hosts.add(entry.strip().lower().rstrip("."))
        self.hosts = frozenset(hosts)
        self.networks = tuple(networks)
        self._trusted: set[str] = set()
        """Addresses that allow-listed host names resolved to (the connect-time check)."""

    def host_allowed(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def address_allowed(self, ip: str) -> bool:
        try:
            addr: Address = ipaddress.ip_address(ip.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        if any(addr in net for net in self.networks) or str(addr) in self._trusted:
            return True
        return is_public(addr)

    def trust(self, host: str, addresses: list[str]) -> None:
        if self.host_allowed(host):
            self._trusted.update(addresses)

    async def check_url(self, url: str, param: str) -> None:
        """Refuses (400 naming ``param``) a URL whose host is not a public address."""
        try:
            parts = urlsplit(url)
            host, port = parts.hostname, parts.port
        except ValueError as exc:
            raise EgressRefused(f"{param}: not a valid URL", param=param) from exc
        if parts.scheme not in ("http", "https") or not host:
            raise EgressRefused(f"{param}: an http or https URL with a host", param=param)
        try:
            host.encode("idna")  # what the resolver sends: a name it cannot encode is no host
        except UnicodeError as exc:
            raise EgressRefused(f"{param}: {host!r} is not a valid host name", param=param) from exc
        if self.host_allowed(host):
            return
        for ip in await resolve(host, port or 80):
            if not self.address_allowed(ip):
                raise EgressRefused(
                    f"{param}: {host} is not a public address (loopback, private, link-local "
                    "and reserved ranges are refused unless the operator allow-lists them)",
                    param=param,
                )

    def check_connect(self, addr_info: Any) -> socket.socket:
        """aiohttp's socket factory: the last check, on the very address being dialled."""
        family, type_, proto, _, sockaddr = addr_info
        if not self.address_allowed(str(sockaddr[0])):
            log.warning("egress to %s refused by the egress policy", sockaddr[0])
            raise OSError(f"egress to {sockaddr[0]} refused by the egress policy")
        return socket.socket(family=family, type=type_, proto=proto)


def is_public(addr: Address) -> bool:
    return not (
        addr.is_loopback
        or addr.is_private
        or addr.is_link_local
        or addr.is_multicast
        or addr.is_reserved
        or addr.is_unspecified
        or not addr.is_global
    )


async def resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to; none when it does not resolve (checked again later)."""
    try:
        return [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await asyncio.wait_for(
            loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_SECONDS
        )
    except (OSError, TimeoutError):
        return []
    return [str(info[4][0]) for info in infos]


class _TrustingResolver(AbstractResolver):
    """The default resolver, remembering what allow-listed names resolve to."""

    def __init__(self, policy: EgressPolicy):
        self._policy = policy
        self._inner = aiohttp.DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        self._policy.trust(host, [r["host"] for r in found])
        return found

    async def close(self) -> None:
        await self._inner.close()


def guarded_connector(policy: EgressPolicy, **kwargs: Any) -> aiohttp.TCPConnector:
    """A connector whose every connection passes the egress policy (made inside the loop)."""
    return aiohttp.TCPConnector(
        resolver=_TrustingResolver(policy), socket_factory=policy.check_connect, **kwargs
    )
