"""The outbound URL guard: public http(s) only, judged on resolved addresses, exemptions by host or CIDR."""

from __future__ import annotations

import ipaddress

import pytest

from app.egress.errors import BlockedUrl
from app.egress.url_guard import Resolver, UrlGuard, address_rule


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
    """`localhost` is refused because it resolves to loopback (the real system resolver)."""
    with pytest.raises(BlockedUrl, match=r"host localhost resolves to (127\.0\.0\.1|::1), a loopback address"):
        await UrlGuard().check("http://localhost:8000/a.wav")


async def test_one_internal_answer_among_public_ones_is_refused() -> None:
    resolver = fixed_resolver({"media.example": ["93.184.216.34", "10.0.0.7"]})
    with pytest.raises(BlockedUrl, match=r"resolves to 10.0.0.7, a private address"):
        await UrlGuard(resolver=resolver).check("https://media.example/a.mp4")


@pytest.mark.parametrize("url", ["ftp://93.184.216.34/a.mp4", "file:///etc/passwd", "gopher://x/", "/relative"])
async def test_only_http_and_https(url: str) -> None:
    with pytest.raises(BlockedUrl, match="only http and https"):
        await UrlGuard().check(url)


async def test_unresolvable_and_hostless_urls_are_refused() -> None:
    guard = UrlGuard(resolver=fixed_resolver({}))
    with pytest.raises(BlockedUrl, match="could not be resolved"):
        await guard.check("https://nowhere.invalid/a.mp4")
    with pytest.raises(BlockedUrl, match="has no host"):
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
