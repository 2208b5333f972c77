"""Send signed webhook requests with httpx; refuse forbidden addresses when connecting.

The host is resolved here and every address is checked against the tenant's policy; the
connection then goes to the checked address itself (TLS still verifies the host name), so
a DNS answer that changes between the subscription check and the request (rebinding)
cannot reach an internal service. Redirects are never followed.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterable, Sequence
from typing import Any

import httpcore
import httpx

from ccbridge.domain.webhooks.targets import (
    IpNetwork,
    TargetRefusedError,
    check_address,
    check_url,
    parse_networks,
)
from ccbridge.services.event_ports import SendResult

REQUEST_TIMEOUT = 10.0
"""A CRM that has not answered in 10 s counts as failed (and is retried later)."""
MAX_ERROR = 300


async def resolve(host: str, port: int) -> list[str]:
    """Every address *host* resolves to (an IP literal resolves to itself)."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore network backend that connects only to addresses the policy allows."""

    def __init__(self, allow: Sequence[IpNetwork]) -> None:
        self._allow = list(allow)
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore's signature)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Resolve, check every address, connect to the first allowed one."""
        addresses = await resolve(host, port)
        for address in addresses:
            check_address(address, self._allow)
        if not addresses:
            raise TargetRefusedError(f"{host} does not resolve")
        return await self._inner.connect_tcp(
            addresses[0], port, timeout, local_address, socket_options
        )

    async def connect_unix_socket(
        self,
        path: str,  # noqa: ARG002
        timeout: float | None = None,  # noqa: ARG002, ASYNC109
        socket_options: Iterable[Any] | None = None,  # noqa: ARG002
    ) -> httpcore.AsyncNetworkStream:
        """Unix sockets are never a webhook target."""
        raise TargetRefusedError("unix sockets are not webhook targets")

    async def sleep(self, seconds: float) -> None:
        """Delegate."""
        await self._inner.sleep(seconds)


def _transport(allow: Sequence[IpNetwork]) -> httpx.AsyncHTTPTransport:
    transport = httpx.AsyncHTTPTransport(retries=0)
    # httpx does not expose the network backend; swap the pool for one that uses ours.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=4,
        max_keepalive_connections=2,
        keepalive_expiry=30.0,
        network_backend=GuardedBackend(allow),
    )
    return transport


class HttpWebhookSender:
    """Implements ``services.event_ports.WebhookSender`` with one client per allow-list.

    Pooled connections are per allow-list, so a connection opened under one tenant's
    private-network exception is never reused for a tenant without it.
    """

    def __init__(self, *, timeout: float = REQUEST_TIMEOUT) -> None:
        self._timeout = timeout
        self._clients: dict[tuple[str, ...], httpx.AsyncClient] = {}

    def _client(self, allow_private: Sequence[str]) -> httpx.AsyncClient:
        key = tuple(sorted(allow_private))
        client = self._clients.get(key)
        if client is None:
            client = httpx.AsyncClient(
                transport=_transport(parse_networks(key)),
                timeout=self._timeout,
                follow_redirects=False,
                headers={"user-agent": "ccbridge-webhooks/1"},
            )
            self._clients[key] = client
        return client

    async def check_target(self, url: str, allow_private: Sequence[str]) -> None:
        """Subscription-time check (the connect-time check repeats it)."""
        host, port = check_url(url, allow_http=True)
        allow = parse_networks(allow_private)
        try:
            addresses = await resolve(host, port)
        except OSError as exc:
            raise TargetRefusedError(f"{host} does not resolve: {exc}") from exc
        for address in addresses:
            check_address(address, allow)

    async def send(
        self, url: str, body: bytes, headers: dict[str, str], allow_private: Sequence[str]
    ) -> SendResult:
        """POST once; any 2xx is success, everything else (3xx included) a failure."""
        started = time.perf_counter()
        try:
            response = await self._client(allow_private).post(url, content=body, headers=headers)
        except TargetRefusedError as exc:
            return SendResult(False, None, f"refused: {exc}"[:MAX_ERROR], _ms(started))
        except httpx.HTTPError as exc:
            cause = exc.__cause__ if isinstance(exc.__cause__, TargetRefusedError) else exc
            return SendResult(
                False, None, f"{type(cause).__name__}: {cause}"[:MAX_ERROR], _ms(started)
            )
        ok = 200 <= response.status_code < 300
        return SendResult(
            ok,
            response.status_code,
            None if ok else response.text[:MAX_ERROR],
            _ms(started),
        )

    async def close(self) -> None:
        """Close every pooled connection."""
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
