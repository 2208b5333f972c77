"""The one outbound-address policy: which resolved addresses ccbridge may connect to.

Every connection to a host a tenant names (webhooks, recording push export, IVR CRM lookups)
goes through this decision. Only global unicast passes; loopback, private, link-local (cloud
metadata), CGNAT, benchmark, documentation, reserved, multicast, unspecified, unique-local
and site-local addresses are refused, also when hidden in an IPv6 form that carries an IPv4
address (IPv4-mapped, 6to4, NAT64, Teredo); IPv4-compatible ``::/96`` is refused outright.
A platform admin may open a network for one tenant (an on-premises CRM or FTP server)
through the allow-list.

Failures reported to tenants use the small fixed vocabulary below, never exception text, so
the ``error`` fields cannot be used to scan the platform's internal network.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_ALLOW_ENTRIES = 20


class EgressFailure(StrEnum):
    """What a tenant is told about a failed outbound connection (nothing more)."""

    REFUSED_ADDRESS = "refused_address"
    CONNECT_FAILED = "connect_failed"
    TIMEOUT = "timeout"
    TLS_ERROR = "tls_error"
    AUTH_FAILED = "auth_failed"
    PROTOCOL_ERROR = "protocol_error"
    TRANSFER_FAILED = "transfer_failed"


def http_failure(status: int) -> str:
    """``http_<status>``: the receiver answered, just not with a 2xx."""
    return f"http_{int(status)}"


REFUSED_MESSAGE = (
    "the host must resolve only to public addresses; a platform admin can allow-list "
    "a private network for the tenant"
)
"""One message for unresolvable and non-public hosts alike (no internal DNS oracle)."""


class EgressError(Exception):
    """An outbound connection failed; ``failure`` is all a tenant may be told."""

    def __init__(self, failure: str, message: str | None = None) -> None:
        super().__init__(message or failure)
        self.failure = failure


class EgressRefusedError(EgressError, ValueError):
    """The target's address (or its form) is not allowed; ``category`` says why (for logs)."""

    def __init__(self, message: str = REFUSED_MESSAGE, *, category: str = "refused") -> None:
        super().__init__(EgressFailure.REFUSED_ADDRESS, message)
        self.category = category


_V4_REFUSED: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "unspecified"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "cgnat"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link_local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "reserved"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "reserved"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmark"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
)
_V6_REFUSED: tuple[tuple[str, str], ...] = (
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::/96", "ipv4_compatible"),
    ("100::/64", "reserved"),
    ("2001:db8::/32", "documentation"),
    ("fc00::/7", "unique_local"),
    ("fe80::/10", "link_local"),
    ("fec0::/10", "site_local"),
    ("ff00::/8", "multicast"),
)
_REFUSED: tuple[tuple[IpNetwork, str], ...] = tuple(
    (ipaddress.ip_network(net), why) for net, why in _V4_REFUSED + _V6_REFUSED
)
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))


def parse_address(text: str) -> IpAddress:
    """An IP literal (a ``%zone`` suffix is dropped); raise :class:`EgressRefusedError`."""
    try:
        return ipaddress.ip_address(text.split("%", 1)[0].strip("[]"))
    except ValueError:
        raise EgressRefusedError(category="not_an_ip") from None


def parse_networks(values: Iterable[str]) -> tuple[IpNetwork, ...]:
    """Parse an allow-list (``10.0.0.0/8``, ``192.168.1.20``); ``ValueError`` names the entry."""
    out: list[IpNetwork] = []
    for value in values:
        try:
            out.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"not an IP network: {value[:60]!r}") from None
    return tuple(out)


def embedded_ipv4(addr: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries (mapped, 6to4, NAT64, Teredo)."""
    if addr.ipv4_mapped is not None:
        return addr.ipv4_mapped
    if addr.sixtofour is not None:
        return addr.sixtofour
    if addr.teredo is not None:
        return addr.teredo[1]
    if any(addr in net for net in _NAT64):
        return ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    return None


def refusal(addr: IpAddress) -> str | None:
    """Why *addr* is not global unicast (a category name), or ``None`` when it is."""
    if isinstance(addr, ipaddress.IPv6Address):
        inner = embedded_ipv4(addr)
        if inner is not None:
            why = refusal(inner)
            return None if why is None else f"embedded_{why}"
    for net, why in _REFUSED:
        if addr.version == net.version and addr in net:
            return why
    if not addr.is_global:
        return "reserved"
    return None


def _allowed(addr: IpAddress, allow: Sequence[IpNetwork]) -> bool:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr.version == net.version and addr in net for net in allow)


@dataclass(frozen=True, slots=True)
class EgressDecision:
    """The outcome for one host's resolved addresses: the one to connect to, or why not."""

    address: str | None
    category: str | None = None

    @property
    def allowed(self) -> bool:
        """True when there is an address to connect to."""
        return self.address is not None


def decide(addresses: Sequence[str], allow: Sequence[IpNetwork] = ()) -> EgressDecision:
    """Allow only if every resolved address is global unicast or allow-listed.

    Every address must pass, not just the first: a name that resolves to a public and a
    private address is refused, so the order of a DNS answer cannot smuggle a private one in.
    """
    if not addresses:
        return EgressDecision(None, "unresolved")
    for text in addresses:
        try:
            addr = parse_address(text)
        except EgressRefusedError:
            return EgressDecision(None, "not_an_ip")
        why = refusal(addr)
        if why is not None and not _allowed(addr, allow):
            return EgressDecision(None, why)
    return EgressDecision(addresses[0])


def check_addresses(addresses: Sequence[str], allow: Sequence[IpNetwork] = ()) -> str:
    """The address to connect to; raise :class:`EgressRefusedError` when refused."""
    decision = decide(addresses, allow)
    if decision.address is None:
        raise EgressRefusedError(category=decision.category or "refused")
    return decision.address
