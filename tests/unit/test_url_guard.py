"""The outbound URL guard: public http(s) only, judged on resolved addresses, exemptions by host or CIDR."""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Callable

import pytest
from aiohttp.helpers import is_canonical_ipv4_address, is_ip_address
from hypothesis import given, settings
from hypothesis import strategies as st

from app.egress.errors import BlockedUrl
from app.egress.post import checked_receiver, receiver_url
from app.egress.url_guard import Resolver, UrlGuard, address_rule, media_url


def fixed_resolver(answers: dict[str, list[str]]) -> Resolver:
    async def resolve(host: str, port: int) -> list[str]:
        if host not in answers:
            raise OSError("no such host")
        return answers[host]

    return resolve


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://127.0.0.1/a.mp4", "host 127.0.0.1 is a loopback address"),
        ("http://10.0.0.5/a.mp4", "host 10.0.0.5 is a private address"),
        ("http://192.168.1.1/", "is a private address"),
        ("http://169.254.169.254/latest/meta-data/", "host 169.254.169.254 is the cloud metadata address"),
        ("http://169.254.10.1/", "is a link-local address"),
        ("http://[::1]:8080/x", "host ::1 is a loopback address"),
        ("http://[fe80::1]/", "is a link-local address"),
        ("http://[fd12:3456::1]/", "is a unique-local address"),
        ("http://[::ffff:10.1.2.3]/", "a private address (10.1.2.3 inside IPv6)"),
        ("http://100.64.3.4/", "is a shared (CGNAT) address"),
        ("http://0.0.0.0/", "is an unspecified address"),
        ("http://224.0.0.1/", "is a multicast address"),
        ("http://240.0.0.1/", "is a reserved address"),
    ],
)
async def test_private_literals_are_refused_naming_the_rule(url: str, rule: str) -> None:
    """Each kind of internal address is refused, and the message names which rule and how to allow it."""
    with pytest.raises(BlockedUrl) as caught:
        await UrlGuard().check(url)
    assert rule in caught.value.message
    assert "ALLOW_PRIVATE_HOSTS" in caught.value.message


async def test_a_hostname_is_judged_by_what_it_resolves_to() -> None:
    """`localhost` is refused because it resolves to loopback (the real system resolver); the message names
    the rule, never the address (the service's resolver may know names the client must not learn about)."""
    with pytest.raises(BlockedUrl, match=r"host localhost resolves to a loopback address") as caught:
        await UrlGuard().check("http://localhost:8000/a.wav")
    assert "127.0.0.1" not in caught.value.message and "::1" not in caught.value.message


async def test_one_internal_answer_among_public_ones_is_refused() -> None:
    resolver = fixed_resolver({"media.example": ["93.184.216.34", "10.0.0.7"], "v6.example": ["::ffff:10.9.9.9"]})
    with pytest.raises(BlockedUrl, match=r"media.example resolves to a private address") as caught:
        await UrlGuard(resolver=resolver).check("https://media.example/a.mp4")
    assert "10.0.0.7" not in caught.value.message
    with pytest.raises(BlockedUrl, match=r"v6.example resolves to a private address \(inside an IPv6") as caught:
        await UrlGuard(resolver=resolver).check("https://v6.example/a.mp4")
    assert "10.9.9.9" not in caught.value.message


@pytest.mark.parametrize("url", ["ftp://93.184.216.34/a.mp4", "file:///etc/passwd", "gopher://x/", "/relative"])
async def test_only_http_and_https(url: str) -> None:
    with pytest.raises(BlockedUrl, match="only http and https"):
        await UrlGuard().check(url)


async def test_unresolvable_and_hostless_urls_are_refused() -> None:
    guard = UrlGuard(resolver=fixed_resolver({}))
    with pytest.raises(BlockedUrl, match="could not be resolved"):
        await guard.check("https://nowhere.invalid/a.mp4")
    with pytest.raises(BlockedUrl, match="no host"):
        await guard.check("http:///a.mp4")


async def test_public_address_passes_with_its_addresses_in_order() -> None:
    resolver = fixed_resolver({"cdn.example": ["2606:2800:220:1::1", "93.184.216.34"]})
    target = await UrlGuard(resolver=resolver).check("https://CDN.example./v.mp4?sig=1")
    assert target.host == "cdn.example"
    assert target.port == 443
    assert [str(a) for a in target.addresses] == ["2606:2800:220:1::1", "93.184.216.34"]


async def test_allow_private_hosts_by_cidr_and_by_host() -> None:
    """ALLOW_PRIVATE_HOSTS exempts CIDRs (any host resolving inside) and host names (whatever they resolve to)."""
    guard = UrlGuard.from_setting(" 10.0.0.0/8, ::1 ,localhost,169.254.169.254")
    assert [str(a) for a in (await guard.check("http://10.9.8.7/")).addresses] == ["10.9.8.7"]
    await guard.check("http://[::1]/")
    await guard.check("http://localhost:9/")
    await guard.check("http://169.254.169.254/")
    await guard.check("http://[::ffff:10.1.1.1]/")
    with pytest.raises(BlockedUrl, match=r"192.168.0.1 is a private address"):
        await guard.check("http://192.168.0.1/")
    with pytest.raises(BlockedUrl, match=r"127.0.0.1 is a loopback"):
        await guard.check("http://127.0.0.1/")


def test_a_malformed_allow_entry_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"ALLOW_PRIVATE_HOSTS: '10.0.0.0/99' is neither a host nor a CIDR"):
        UrlGuard.from_setting("10.0.0.0/99")


@pytest.mark.parametrize(
    ("address", "rule"),
    [
        ("8.8.8.8", None),
        ("2001:4860:4860::8888", None),
        ("64:ff9b::a00:1", "a private address (10.0.0.1 inside IPv6)"),
        ("2002:7f00:1::", "a loopback address (127.0.0.1 inside IPv6)"),
        ("198.18.0.1", "a private address"),
        ("fd00:ec2::254", "the cloud metadata address"),
    ],
)
def test_address_rules(address: str, rule: str | None) -> None:
    """NAT64 and 6to4 addresses are judged by the IPv4 address they lead to."""
    assert address_rule(ipaddress.ip_address(address)) == rule


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("http://[::1/c", "[IPv6] address"),
        ("http://a\uff03b.example/", "normalise into URL delimiters"),
        ("http://a\u2100b.example/", "normalise into URL delimiters"),
        ("http://example.com:99999/", "port must be a number from 1 to 65535"),
        ("http://example.com:0/", "port must be a number from 1 to 65535"),
        ("http://2130706433/", "dotted IPv4 address"),
        ("http://127.0.0.1./", "dotted IPv4 address"),
        ("http://0x7f.1/", "dotted IPv4 address"),
        ("http://010.0.0.1/", "dotted IPv4 address"),
        ("http://ex%20ample.com/", "not a valid host name"),
        ("http://a..b/", "not a valid host name"),
        ("http://user:pw@example.com/", "credentials"),
    ],
)
@pytest.mark.parametrize("read", [media_url, receiver_url], ids=["httpx", "yarl"])
def test_url_parts_are_judged_alike_by_both_parsers(read: Callable[[str], object], url: str, rule: str) -> None:
    """The media download (httpx) and webhook delivery (yarl) each read a URL with their own parser and
    apply the same rules to what they read; a refusal names the rule and never quotes the URL."""
    with pytest.raises(BlockedUrl) as caught:
        read(url)
    assert rule in caught.value.message
    assert "pw@" not in caught.value.message


_AUTHORITY = st.text(
    st.one_of(
        st.sampled_from([*"[]:@.%/?#\\ 0123456789abxf-_", "\uff03", "\u2100", "\u00b2", "\u0665", "\u00e9"]),
        st.characters(codec="utf-8"),
    ),
    max_size=30,
)


@settings(max_examples=2000, deadline=None)
@given(authority=_AUTHORITY)
def test_any_authority_is_read_or_refused_never_an_error(authority: str) -> None:
    """Whatever the authority, each reader returns a URL or raises BlockedUrl; and a webhook URL it accepts
    is one aiohttp connects to as written (an IP-looking host is a canonical address, as aiohttp demands)."""
    url = f"http://{authority}/hook"
    with contextlib.suppress(BlockedUrl):
        media_url(url)
    try:
        parsed = receiver_url(url)
    except BlockedUrl:
        return
    host = parsed.raw_host
    assert host is not None and parsed.user is None and parsed.password is None
    if is_ip_address(host) and ":" not in host:
        assert is_canonical_ipv4_address(host), url
    port = parsed.explicit_port
    assert port is None or 1 <= port <= 65535


async def test_registration_resolves_and_judges_as_delivery_does() -> None:
    """`checked_receiver` (registration) reads with yarl and judges the resolved addresses by the rule names."""
    guard = UrlGuard(resolver=fixed_resolver({"hooks.example": ["10.1.1.1"], "pub.example": ["93.184.216.34"]}))
    with pytest.raises(BlockedUrl, match=r"hooks\.example resolves to a private address") as caught:
        await checked_receiver(guard, "https://hooks.example/h")
    assert "10.1.1.1" not in caught.value.message
    assert str(await checked_receiver(guard, "https://pub.example:8443/h?x=1")) == "https://pub.example:8443/h?x=1"
