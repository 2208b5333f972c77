"""Resolve a tenant-named host and pick the address to connect to, under the egress policy.

The caller connects to the returned IP itself, never to the name again: a second DNS lookup
between the check and the connect is what DNS rebinding exploits.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Sequence

from ccbridge.domain.egress import (
    EgressRefusedError,
    IpNetwork,
    check_addresses,
    parse_networks,
)

Resolver = Callable[[str, int], Sequence[str]]
"""``(host, port) -> addresses``; blocking (it runs in a worker thread)."""


def system_resolve(host: str, port: int) -> list[str]:
    """Every address *host* resolves to (an IP literal resolves to itself)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def pick_address(
    host: str, port: int, allow: Sequence[IpNetwork], resolver: Resolver = system_resolve
) -> str:
    """Resolve once and return the checked address; refuse when any answer is forbidden."""
    try:
        addresses = list(resolver(host, port))
    except (OSError, UnicodeError):
        raise EgressRefusedError(category="unresolved") from None
    return check_addresses(addresses, allow)


async def pick_address_async(
    host: str, port: int, allow: Sequence[IpNetwork], resolver: Resolver = system_resolve
) -> str:
    """:func:`pick_address` off the event loop."""
    return await asyncio.to_thread(pick_address, host, port, allow, resolver)


class ResolvingHostChecker:
    """Implements ``services.egress.HostChecker`` with a real (or stubbed) resolver."""

    def __init__(self, resolver: Resolver = system_resolve) -> None:
        self._resolver = resolver

    async def check_host(self, host: str, port: int, allow: Sequence[str]) -> None:
        """Raise ``EgressRefusedError`` unless every address of *host* may be reached."""
        await pick_address_async(host, port, parse_networks(allow), self._resolver)
