"""httpx clients whose every TCP connection goes to an address the egress policy allowed.

The origin host is resolved and checked in the network backend, then the socket is opened to
that very address; httpcore still sends the URL's host in ``Host`` and as the TLS server name
(certificate checks are unchanged). Redirects are never followed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import httpcore
import httpx

from ccbridge.domain.egress import EgressRefusedError, IpNetwork
from ccbridge.egress.resolve import Resolver, pick_address_async, system_resolve


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore network backend that connects only to checked addresses."""

    def __init__(self, allow: Sequence[IpNetwork], resolver: Resolver = system_resolve) -> None:
        self._allow = tuple(allow)
        self._resolver = resolver
        self._inner = httpcore.AnyIOBackend()
        self.connected: list[str] = []
        """Addresses actually connected to (for tests and debugging)."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore's signature)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Resolve once, check every address, connect to the checked one."""
        address = await pick_address_async(host, port, self._allow, self._resolver)
        self.connected.append(address)
        return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)

    async def connect_unix_socket(
        self,
        path: str,  # noqa: ARG002
        timeout: float | None = None,  # noqa: ARG002, ASYNC109
        socket_options: Iterable[Any] | None = None,  # noqa: ARG002
    ) -> httpcore.AsyncNetworkStream:
        """Unix sockets are never an outbound target."""
        raise EgressRefusedError(category="unix_socket")

    async def sleep(self, seconds: float) -> None:
        """Delegate."""
        await self._inner.sleep(seconds)


def guarded_transport(
    allow: Sequence[IpNetwork], resolver: Resolver = system_resolve
) -> httpx.AsyncHTTPTransport:
    """An httpx transport over :class:`GuardedBackend` (no proxies, no retries)."""
    transport = httpx.AsyncHTTPTransport(retries=0)
    # httpx does not expose the network backend; swap the pool for one that uses ours.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=4,
        max_keepalive_connections=2,
        keepalive_expiry=30.0,
        network_backend=GuardedBackend(allow, resolver),
    )
    return transport


def guarded_client(
    allow: Sequence[IpNetwork],
    *,
    timeout: float,
    resolver: Resolver = system_resolve,
    headers: Mapping[str, str] | None = None,
) -> httpx.AsyncClient:
    """An ``AsyncClient`` for tenant-named hosts: guarded, no redirects, no env proxies."""
    return httpx.AsyncClient(
        transport=guarded_transport(allow, resolver),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
        headers=dict(headers or {}),
    )
