"""The egress guard: which URLs and addresses a webhook may point at."""

import ipaddress
import socket
from typing import Any

import pytest

from ingest_gateway.webhooks.egress import (
    EgressRefused,
    check_url,
    parse_destination,
    refusal,
)

REFUSED = {
    "127.0.0.1": "loopback",
    "127.255.0.9": "loopback",
    "::1": "loopback",
    "10.1.2.3": "private",
    "172.16.0.1": "private",
    "192.168.1.1": "private",
    "fc00::1": "private",
    "169.254.169.254": "link-local",  # cloud metadata
    "fe80::1": "link-local",
    "224.0.0.1": "multicast",
    "ff02::1": "multicast",
    "0.0.0.0": "unspecified",  # noqa: S104 - an address to refuse, not to bind
    "::": "unspecified",
    "240.0.0.1": "reserved",
    "100.64.0.1": "not globally routable",  # carrier-grade NAT
    "192.0.2.1": "",  # documentation
    # IPv6 forms of internal IPv4 addresses.
    "::ffff:127.0.0.1": "loopback",
    "::ffff:10.0.0.1": "private",
    "::ffff:169.254.169.254": "link-local",
    "64:ff9b::7f00:1": "loopback",  # NAT64
    "2002:7f00:1::": "loopback",  # 6to4
    "2002:a00:1::": "private",
}
PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize(("address", "reason"), REFUSED.items())
def test_internal_addresses_are_refused_with_the_reason(address: str, reason: str) -> None:
    why = refusal(ipaddress.ip_address(address))
    assert why is not None
    assert reason in why


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert refusal(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example.com/x", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("gopher://example.com/", "only http and https"),
        ("http:///nohost", "names no host"),
        ("https://user:pw@example.com/", "credentials"),
        ("http://example.com:99999/", "not a valid URL"),
        ("http://example.com:0/", "port 0"),
        ("example.com/hook", "only http and https"),
    ],
)
def test_only_plain_http_urls_are_accepted(url: str, message: str) -> None:
    with pytest.raises(EgressRefused, match=message):
        parse_destination(url)


def test_a_destination_names_its_default_port() -> None:
    assert parse_destination("https://example.com/hook").port == 443
    assert parse_destination("http://example.com/hook").port == 80
    assert parse_destination("http://[::1]:8080/").host == "::1"


def resolving_to(*addresses: str) -> Any:
    async def lookup(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
        family = socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port)) for address in addresses]

    return lookup


async def failing_lookup(host: str, port: int, **_: Any) -> list[tuple[Any, ...]]:
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


async def test_a_name_is_refused_when_any_of_its_addresses_is_internal() -> None:
    public = "http://hooks.example.com/"
    await check_url(public, False, resolving_to("93.184.216.34"))
    with pytest.raises(EgressRefused, match="private"):
        await check_url(public, False, resolving_to("93.184.216.34", "10.0.0.5"))
    with pytest.raises(EgressRefused, match="link-local"):
        await check_url(public, False, resolving_to("169.254.169.254"))
    # ...unless private destinations are allowed (tests, local demos).
    await check_url(public, True, resolving_to("10.0.0.5"))


async def test_literal_addresses_and_unresolvable_names() -> None:
    with pytest.raises(EgressRefused, match="loopback"):
        await check_url("http://127.0.0.1:8080/", False, failing_lookup)
    with pytest.raises(EgressRefused, match="loopback"):
        await check_url("http://[::ffff:127.0.0.1]/", False, failing_lookup)
    with pytest.raises(EgressRefused, match="does not resolve"):
        await check_url("http://no-such-host.invalid/", True, failing_lookup)
    await check_url("http://127.0.0.1:8080/", True, failing_lookup)
