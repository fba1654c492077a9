"""Which URLs we may connect to: http(s) to public addresses, unless ALLOW_PRIVATE_HOSTS exempts the host.

The check runs on the *resolved* addresses (a hostname pointing at 127.0.0.1 is as dangerous as the literal),
and the caller connects to the addresses this returns, never resolving again: a DNS answer that changes
between check and connect (rebinding) therefore cannot reach an address that was not checked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import httpx

from app.egress.errors import BlockedUrl

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

_HINT = "set ALLOW_PRIVATE_HOSTS to allow it"
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
# NAT64 gateways forward these to the IPv4 address in the low 32 bits, so they are judged as that address.
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    # dict keeps the resolver's preference order while dropping the per-protocol duplicates.
    return list(dict.fromkeys(str(info[4][0]).split("%", 1)[0] for info in infos))


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_rule(ip: IPAddress) -> str | None:
    """The rule that forbids connecting to `ip` ("a loopback address", ...), or None for a public address."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            rule = address_rule(inner)
            return f"{rule} ({inner} inside IPv6)" if rule else None
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip in _METADATA:
        return "the cloud metadata address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _CGNAT:
        return "a shared (CGNAT) address"
    if isinstance(ip, ipaddress.IPv6Address) and ip in _UNIQUE_LOCAL:
        return "a unique-local address"
    if ip.is_reserved:
        return "a reserved address"
    if ip.is_private:
        return "a private address"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "a site-local address"
    if not ip.is_global:
        return "a non-public address"
    return None


@dataclass(frozen=True)
class Target:
    """A URL that passed the guard, with the addresses to connect to (in the resolver's order)."""

    url: httpx.URL
    host: str
    port: int
    addresses: tuple[IPAddress, ...]


class UrlGuard:
    def __init__(self, allow: Iterable[str] = (), *, resolver: Resolver = system_resolver) -> None:
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in allow:
            entry = raw.strip().strip("[]").rstrip(".").lower()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                if "/" in entry or " " in entry:
                    raise ValueError(f"ALLOW_PRIVATE_HOSTS: {raw.strip()!r} is neither a host nor a CIDR") from None
                hosts.add(entry)
        self.allowed_hosts = frozenset(hosts)
        self.allowed_networks = tuple(networks)
        self._resolve = resolver

    @classmethod
    def from_setting(cls, value: str | None, *, resolver: Resolver = system_resolver) -> UrlGuard:
        """From ALLOW_PRIVATE_HOSTS: comma-separated hosts or CIDRs (e.g. "localhost,10.0.0.0/8,::1")."""
        return cls((value or "").split(","), resolver=resolver)

    def _allowed_address(self, ip: IPAddress) -> bool:
        for net in self.allowed_networks:
            if ip in net:
                return True
            if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None and ip.ipv4_mapped in net:
                return True
        return False

    async def check(self, url: str | httpx.URL) -> Target:
        """Resolve the URL's host and return what may be connected to, or raise BlockedUrl naming the rule."""
        try:
            parsed = httpx.URL(url)
        except (httpx.InvalidURL, TypeError):
            raise BlockedUrl(f"{str(url)[:200]!r} is not a valid URL") from None
        if parsed.scheme not in ("http", "https"):
            raise BlockedUrl(f"only http and https URLs can be fetched, not {parsed.scheme or 'a relative'} URLs")
        host = parsed.raw_host.decode("ascii")
        if not host:
            raise BlockedUrl(f"{str(parsed)[:200]} has no host")
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        addresses = await self.addresses(host, port)
        return Target(url=parsed, host=host.lower().rstrip("."), port=port, addresses=tuple(addresses))

    async def addresses(self, host: str, port: int) -> list[IPAddress]:
        """`host`'s addresses (itself when it is an IP literal, else resolved now) if every one may be
        connected to; else BlockedUrl naming the rule."""
        host = host.strip("[]").lower().rstrip(".")
        if not host:
            raise BlockedUrl("the URL has no host")
        try:
            addresses: list[IPAddress] = [ipaddress.ip_address(host)]
        except ValueError:
            try:
                addresses = [ipaddress.ip_address(a) for a in await self._resolve(host, port)]
            except (OSError, UnicodeError, ValueError):
                raise BlockedUrl(f"host {host} could not be resolved") from None
        if not addresses:
            raise BlockedUrl(f"host {host} could not be resolved")
        if host not in self.allowed_hosts:
            # Every address must pass: a resolver answering one public and one internal address is refused.
            for ip in addresses:
                rule = address_rule(ip)
                if rule is not None and not self._allowed_address(ip):
                    named = f"host {ip}" if str(ip) == host else f"host {host} resolves to {ip},"
                    raise BlockedUrl(f"{named} {'is ' if str(ip) == host else ''}{rule}; {_HINT}")
        return addresses
