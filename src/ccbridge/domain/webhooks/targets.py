"""Which webhook target addresses are allowed (SSRF guard).

Loopback, link-local, private (RFC 1918, ULA, CGNAT), multicast, reserved and unspecified
addresses are refused unless the tenant admin allow-listed a network containing them (an
on-premises CRM on the LAN). The check runs on every resolved address, at subscription time
and again at connect time against the address actually connected to (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from urllib.parse import urlsplit

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_CGNAT = ipaddress.ip_network("100.64.0.0/10")


class TargetRefusedError(ValueError):
    """The webhook URL or address is not allowed."""


def parse_networks(values: Sequence[str]) -> list[IpNetwork]:
    """Parse an allow-list (``10.0.0.0/8``, ``192.168.1.20``); raise on a bad entry."""
    try:
        return [ipaddress.ip_network(v, strict=False) for v in values]
    except ValueError as exc:
        raise TargetRefusedError(f"not an IP network: {exc}") from exc


def is_public(addr: IpAddress) -> bool:
    """True for a globally routable unicast address."""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return is_public(addr.ipv4_mapped)
    return not (
        addr.is_loopback
        or addr.is_link_local
        or addr.is_private
        or addr.is_multicast
        or addr.is_reserved
        or addr.is_unspecified
        or (isinstance(addr, ipaddress.IPv4Address) and addr in _CGNAT)
    )


def check_address(address: str, allow: Sequence[IpNetwork]) -> None:
    """Raise :class:`TargetRefusedError` unless *address* is public or allow-listed."""
    try:
        addr = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError as exc:
        raise TargetRefusedError(f"not an IP address: {address!r}") from exc
    if is_public(addr) or any(addr in net for net in allow if addr.version == net.version):
        return
    raise TargetRefusedError(
        f"address {addr} is loopback, link-local, private or multicast; "
        "a tenant admin can allow-list its network"
    )


def check_url(url: str, *, allow_http: bool) -> tuple[str, int]:
    """Validate the URL's form; return ``(host, port)``. HTTPS only unless *allow_http*."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or (parts.scheme == "http" and not allow_http):
        raise TargetRefusedError("webhook URLs must use https")
    if not parts.hostname:
        raise TargetRefusedError("webhook URL has no host")
    if parts.username or parts.password:
        raise TargetRefusedError("webhook URL must not carry credentials")
    if any(ch in url for ch in "\r\n\x00"):
        raise TargetRefusedError("webhook URL contains control characters")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return parts.hostname, port
