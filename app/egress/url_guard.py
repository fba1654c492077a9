"""Which URLs we may connect to: http(s) to public addresses, unless ALLOW_PRIVATE_HOSTS exempts the host.

The check runs on the *resolved* addresses (a hostname pointing at 127.0.0.1 is as dangerous as the literal),
and the caller connects to the addresses this returns, never resolving again: a DNS answer that changes
between check and connect (rebinding) therefore cannot reach an address that was not checked.

Before any address, the URL's parts (`url_rule`): http(s), no credentials, a port from 1 to 65535, and a host
that every client reads the same way. Each client parses with its own library (media downloads: httpx,
`media_url`; our webhooks: yarl under aiohttp, `app.egress.post.receiver_url`) and applies these rules to
what that parser read, so a URL is accepted as input only when the client that will use it reads it so.
A refusal names the rule, never what a host name resolved to: the service's resolver may know internal
names, and an error echoing their addresses would answer questions about the internal network.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from app.egress.errors import BlockedUrl

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], Awaitable[list[str]]]

_HINT = "set ALLOW_PRIVATE_HOSTS to allow it"
PORTS = (1, 65535)  # TCP's port field is 16 bits and port 0 cannot be connected to (RFC 9293 §3.1)
# WHATWG URL §3.5 ("ends in a number"): a host whose last label is digits, or 0x and hex digits, is an IPv4
# address to browsers, which read 2130706433, 127.1 and 0x7f.0.0.1 as 127.0.0.1 (and so does the C
# resolver's inet_aton); aiohttp refuses every such form but the dotted quad. Only that form is accepted.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")
# A DNS name as resolvers take it (RFC 1123 §2.1; underscores as some internal names have them): anything
# else (a space, %, a stray delimiter) is a name no resolver answers or one the clients' parsers split
# differently. An internationalised name reaches this in its ASCII (IDNA) form.
_LABEL = re.compile(r"[a-z0-9_-]{1,63}")
_MAX_NAME = 253  # RFC 1035 §2.3.4, without the trailing dot
CREDENTIALS_RULE = "the URL must not carry credentials (user:pass@): they would be stored and shown with it"
PORT_RULE = f"the URL's port must be a number from {PORTS[0]} to {PORTS[1]}"
IPV4_RULE = (
    "the URL's host must be a name or a canonical dotted IPv4 address a.b.c.d (no leading zeros or trailing "
    "dot): numeric forms such as 2130706433 or 127.1 are read differently by different clients"
)
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


def host_rule(host: str) -> str | None:
    """Why `host`, as a URL parser read it (ASCII, IPv6 without brackets), is not one we connect to; None if
    it is a DNS name, a dotted-quad IPv4 address or an IPv6 address."""
    if not host:
        return "the URL has no host"
    if ":" in host:
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            return "the URL's host is not a valid [IPv6] address"
        return None
    name = host.lower()
    labels = name.removesuffix(".").split(".")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        try:
            ipaddress.IPv4Address(name)  # four decimal parts of 0-255, no leading zeros, no trailing dot
        except ValueError:
            return IPV4_RULE
        return None
    if len(name.removesuffix(".")) > _MAX_NAME or not all(_LABEL.fullmatch(label) for label in labels):
        return "the URL's host is not a valid host name"
    return None


def url_rule(scheme: str, *, credentials: bool, host: str, port: int | None) -> str | None:
    """The first rule the parts of a parsed URL break, or None: http(s), no credentials, a host every client
    reads the same way, a port from 1 to 65535 (None: the scheme's default)."""
    if scheme not in ("http", "https"):
        return f"only http and https URLs can be fetched, not {scheme or 'a relative'} URLs"
    if credentials:
        return CREDENTIALS_RULE
    rule = host_rule(host)
    if rule is not None:
        return rule
    if port is not None and not PORTS[0] <= port <= PORTS[1]:
        return PORT_RULE
    return None


def unparsable(exc: Exception) -> BlockedUrl:
    """A URL its parser refused (httpx or yarl), named by the rule it broke. The parser's own message is not
    passed on: it quotes the authority, credentials included."""
    text = str(exc).lower()
    if "port" in text:
        return BlockedUrl(PORT_RULE)
    if "ipv4" in text:
        return BlockedUrl(IPV4_RULE)
    if "ipv6" in text:
        return BlockedUrl("the URL's host is not a valid [IPv6] address (brackets must enclose one address)")
    if "nfkc" in text:
        # urllib and yarl refuse a netloc with characters that NFKC-normalise into delimiters (CVE-2019-9636).
        return BlockedUrl("the URL's host has characters that normalise into URL delimiters (such as \uff03 or \u2100)")
    if isinstance(exc, UnicodeError) or "idna" in text or "codepoint" in text:
        return BlockedUrl("the URL's host is not a valid internationalised domain name (IDNA)")
    if "host" in text:
        return BlockedUrl("the URL has no valid host")
    return BlockedUrl("the URL is not valid")


def media_url(url: str | httpx.URL) -> httpx.URL:
    """`url` as httpx (our media downloads) reads it, if its parts pass `url_rule`; else BlockedUrl."""
    try:
        if isinstance(url, str):
            # The standard library's reading too, whose errors name unbalanced brackets where httpx's name a
            # port (http://[::1/c): a URL both read is also one most other readers take.
            urlsplit(url)
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, TypeError) as exc:  # IDNA failures are UnicodeError, a ValueError
        raise unparsable(exc) from None
    rule = url_rule(
        parsed.scheme,
        credentials=bool(parsed.userinfo),
        host=parsed.raw_host.decode("ascii", "replace"),
        port=parsed.port,
    )
    if rule is not None:
        raise BlockedUrl(rule)
    return parsed


def address_rule(ip: IPAddress, *, show_embedded: bool = True) -> str | None:
    """The rule that forbids connecting to `ip` ("a loopback address", ...), or None for a public address.
    `show_embedded`: name the IPv4 address inside an IPv6 one (only when the client wrote the address)."""
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if inner is not None:
            rule = address_rule(inner)
            if rule is None:
                return None
            return f"{rule} ({inner} inside IPv6)" if show_embedded else f"{rule} (inside an IPv6 address)"
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
        parsed = media_url(url)
        host = parsed.raw_host.decode("ascii")
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
            literal = True
        except ValueError:
            literal = False
            try:
                addresses = [ipaddress.ip_address(a) for a in await self._resolve(host, port)]
            except (OSError, UnicodeError, ValueError):
                raise BlockedUrl(f"host {host} could not be resolved") from None
        if not addresses:
            raise BlockedUrl(f"host {host} could not be resolved")
        if host not in self.allowed_hosts:
            # Every address must pass: a resolver answering one public and one internal address is refused.
            for ip in addresses:
                rule = address_rule(ip, show_embedded=literal)
                if rule is not None and not self._allowed_address(ip):
                    # A name's addresses are never named: only the rule (see the module's docstring).
                    verb = "is" if literal else "resolves to"
                    raise BlockedUrl(f"host {host} {verb} {rule}; {_HINT}")
        return addresses
