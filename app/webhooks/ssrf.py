"""Refuse to call back into private networks (server-side request forgery).

A callback URL's host is resolved once, every address is checked (loopback, private, link-local,
multicast, reserved, unspecified, shared, IPv4-mapped and 6to4/Teredo forms of those), and the
connection must then go to one of exactly those addresses, so a DNS answer that changes between the
check and the connection (rebinding) cannot sneak a private address in. An explicit allow-list
(networks) admits what would otherwise be refused, e.g. a loopback receiver in tests.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Sequence
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class UnsafeCallback(ValueError):
    """The URL may not be called: bad scheme, or an address inside a refused range."""


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, 6to4, Teredo, NAT64), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in ipaddress.IPv6Network("64:ff9b::/96"):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and (inner := _embedded_ipv4(address)) is not None:
        return is_public(inner)
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or (isinstance(address, ipaddress.IPv4Address) and address in ipaddress.IPv4Network("100.64.0.0/10"))
    )


def allowed(address: Address, allow: Sequence[Network]) -> bool:
    return is_public(address) or any(address in network for network in allow)


def resolve_callback(
    url: str, allow: Sequence[Network] = (), port_default: int | None = None
) -> list[Address]:
    """The addresses the callback may connect to; raises ``UnsafeCallback`` when any is refused."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeCallback(f"{url!r}: callbacks are http(s) URLs with a host")
    if parts.username or parts.password:
        raise UnsafeCallback("callback URLs may not carry credentials")
    port = parts.port or port_default or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UnsafeCallback(f"{parts.hostname!r} does not resolve") from exc
    addresses = list(dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos))
    refused = [a for a in addresses if not allowed(a, allow)]
    if refused:
        raise UnsafeCallback(f"{parts.hostname!r} resolves to refused addresses {[str(a) for a in refused]}")
    return addresses
