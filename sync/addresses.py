"""Which network addresses a web source may fetch from (server-side request forgery guard).

A web source fetches URLs that come from outside: a sitemap's entries, a page's redirects. Left
alone, a sitemap entry or a redirect to ``http://169.254.169.254/`` (cloud metadata),
``http://localhost:6379/`` or an intranet host would be fetched and indexed for anyone to ask
about. So, by default, only public addresses are fetched.

The check sits in the connection layer (:class:`GuardedBackend`, an ``httpcore`` network
backend), so it applies to every connection a web source opens, redirects to other hosts
included. The host name is resolved once, *every* resolved address is checked, and the
connection is made to the checked address (TLS still verifies the certificate for the host
name): a DNS answer that changes between check and connect (DNS rebinding) cannot slip past.

``SYNC_ALLOWED_PRIVATE_HOSTS`` opens chosen private hosts (an intranet wiki; the tests' local
sites): comma-separated ``host:port`` (the URL's host and port as written), ``host`` (any port),
an IP address, or a CIDR network (``10.20.0.0/16``: any host resolving into it).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpcore

from sync.errors import BlockedAddressError, SourceConfigError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (IPv4-mapped, 6to4, Teredo, NAT64), if any."""
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """Globally routable unicast: not loopback, private, link-local, unique-local, multicast,
    unspecified, reserved, shared (CGNAT) or documentation space, nor an IPv6 address that
    wraps such an IPv4 address."""
    inner = embedded_ipv4(address)
    if inner is not None and not is_public(inner):
        return False
    return (
        address.is_global
        and not address.is_multicast
        and not address.is_private
        and not address.is_loopback
        and not address.is_link_local
        and not address.is_unspecified
        and not address.is_reserved
        and not (isinstance(address, ipaddress.IPv6Address) and address.is_site_local)
    )


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    """Public addresses, plus the private hosts and networks an operator opened."""

    hosts: frozenset[tuple[str, int | None]] = frozenset()
    """``(host, port)`` as written in URLs (lower case); port None: any port."""
    networks: tuple[IPNetwork, ...] = field(default_factory=tuple)

    @classmethod
    def parse(cls, text: str | None) -> AddressPolicy:
        """From ``SYNC_ALLOWED_PRIVATE_HOSTS``; raises :class:`SourceConfigError` naming a bad
        entry."""
        hosts: set[tuple[str, int | None]] = set()
        networks: list[IPNetwork] = []
        for raw in (text or "").split(","):
            entry = raw.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            host, port = _split_host_port(entry)
            if not host or any(c in host for c in "/ @?#"):
                raise SourceConfigError(
                    f"SYNC_ALLOWED_PRIVATE_HOSTS: {entry!r} is not host:port, a host, "
                    "an IP address or a CIDR network"
                )
            hosts.add((host.lower(), port))
        return cls(frozenset(hosts), tuple(networks))

    def refusal(self, host: str, port: int, address: IPAddress) -> str | None:
        """Why connecting to ``address`` (for ``host:port``) is refused; None when allowed."""
        host = host.lower().strip("[]")
        if (host, port) in self.hosts or (host, None) in self.hosts:
            return None
        if is_public(address):
            return None
        if any(address.version == n.version and address in n for n in self.networks):
            return None
        return (
            f"{_show(host, port)} resolves to {address}, a non-public address; web sources "
            "fetch only public addresses unless SYNC_ALLOWED_PRIVATE_HOSTS opens the host"
        )

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """Every address ``host`` resolves to, each checked; raises
        :class:`BlockedAddressError` if any one is refused (a name with one private answer
        among public ones is refused as a whole: the attacker may control which is used)."""
        try:
            addresses = [ipaddress.ip_address(host.strip("[]"))]
        except ValueError:
            loop = asyncio.get_running_loop()
            try:
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except OSError as e:
                raise httpcore.ConnectError(f"cannot resolve {host}: {e}") from e
            addresses = list(dict.fromkeys(_address(info) for info in infos))
        for address in addresses:
            reason = self.refusal(host, port, address)
            if reason is not None:
                raise BlockedAddressError(reason)
        return addresses


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections only to addresses the policy allows, to the address it checked."""

    def __init__(self, policy: AddressPolicy, inner: httpcore.AsyncNetworkBackend | None = None):
        self._policy = policy
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._policy.resolve(host, port)
        last: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as e:
                last = e
        assert last is not None
        raise last

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedAddressError("web sources do not connect to local sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _address(info: tuple[Any, ...]) -> IPAddress:
    # sockaddr is (host, port) or (host, port, flow, scope); a scoped "fe80::1%eth0" loses
    # its scope here, which only matters for link-local addresses, refused anyway.
    return ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])


def _split_host_port(entry: str) -> tuple[str, int | None]:
    if entry.startswith("["):  # [::1]:8080
        host, _, rest = entry[1:].partition("]")
        port_text = rest.removeprefix(":")
    elif entry.count(":") == 1:
        host, _, port_text = entry.partition(":")
    else:
        host, port_text = entry, ""
    if not port_text:
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise SourceConfigError(f"SYNC_ALLOWED_PRIVATE_HOSTS: {entry!r} has no valid port")
    return host, int(port_text)


def _show(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
