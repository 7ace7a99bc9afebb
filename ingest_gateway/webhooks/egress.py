"""Server-side request forgery guard: which URLs and addresses a webhook may point at.

Checked when a subscription is created (the gateway only resolves the host, it never calls it)
and again at every delivery, on the very addresses the connection then uses, so a name that
later resolves to an internal address (DNS rebinding) is refused too.
"""

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# getaddrinfo's signature, as the event loop offers it.
Lookup = Callable[..., Awaitable[list[tuple[Any, ...]]]]

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
RESOLVE_TIMEOUT_SECONDS = 3.0


class EgressRefused(Exception):
    """This URL or address may not be called; the message says why."""


@dataclass(frozen=True)
class Destination:
    scheme: str
    host: str
    port: int


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, NAT64, 6to4, Teredo), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    return address.teredo[1] if address.teredo is not None else None


def refusal(address: IPAddress) -> str | None:
    """Why `address` may not be called, or None for a public unicast address."""
    if isinstance(address, ipaddress.IPv6Address) and (inner := embedded_ipv4(address)):
        return refusal(inner)
    for reason, applies in (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        # Shared address space (100.64.0.0/10), documentation ranges and the like.
        ("not globally routable", not address.is_global),
    ):
        if applies:
            return f"{address} is a {reason} address"
    return None


def parse_destination(url: str) -> Destination:
    """The scheme, host and port of an http(s) URL; EgressRefused for anything else."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise EgressRefused(f"not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise EgressRefused("only http and https URLs are allowed")
    if not parts.hostname:
        raise EgressRefused("the URL names no host")
    if parts.username is not None or parts.password is not None:
        raise EgressRefused("the URL must not carry credentials (sign with the secret instead)")
    if port == 0:
        # `port or default` would check port 80 while the client connects elsewhere.
        raise EgressRefused("port 0 is not a port a receiver listens on")
    default = 443 if parts.scheme == "https" else 80
    return Destination(parts.scheme, parts.hostname, default if port is None else port)


def literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def check_addresses(addresses: list[IPAddress], allow_private: bool) -> None:
    if not addresses:
        raise EgressRefused("the host resolves to no address")
    if allow_private:
        return
    for address in addresses:
        if reason := refusal(address):
            raise EgressRefused(f"refused: {reason}")


async def resolve(host: str, port: int, lookup: Lookup | None = None) -> list[IPAddress]:
    """Every address `host` resolves to; EgressRefused when it does not resolve."""
    if (literal := literal_address(host)) is not None:
        return [literal]
    getaddrinfo = lookup or asyncio.get_running_loop().getaddrinfo
    try:
        infos = await asyncio.wait_for(
            getaddrinfo(host, port, type=socket.SOCK_STREAM), RESOLVE_TIMEOUT_SECONDS
        )
    except (OSError, TimeoutError, UnicodeError) as exc:
        raise EgressRefused(f"the host does not resolve ({type(exc).__name__})") from None
    # sockaddr[0] is the address; an IPv6 one may carry a %scope suffix.
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


async def check_url(url: str, allow_private: bool, lookup: Lookup | None = None) -> Destination:
    """Refuse a URL that is not http(s) or whose host resolves to an internal address."""
    destination = parse_destination(url)
    check_addresses(await resolve(destination.host, destination.port, lookup), allow_private)
    return destination
