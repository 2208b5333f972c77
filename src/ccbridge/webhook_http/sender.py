"""Send signed webhook requests with httpx through the egress guard.

Every connection goes to an address the egress policy allowed, resolved once per connection
(DNS rebinding cannot swap in an internal address between check and connect); redirects are
never followed. A failure is reported with the fixed egress vocabulary only (``timeout``,
``refused_address``, ``http_503``, ...): never exception text or the receiver's body.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import httpx
import structlog

from ccbridge.domain.egress import http_failure, parse_networks
from ccbridge.domain.webhooks.targets import check_url
from ccbridge.egress.failures import failure_of
from ccbridge.egress.http import guarded_client
from ccbridge.egress.resolve import Resolver, pick_address_async, system_resolve
from ccbridge.services.event_ports import SendResult

log = structlog.get_logger(__name__)

REQUEST_TIMEOUT = 10.0
"""A receiver that has not answered in 10 s counts as failed (and is retried later)."""


class HttpWebhookSender:
    """Implements ``services.event_ports.WebhookSender`` with one client per allow-list.

    Pooled connections are per allow-list, so a connection opened under one tenant's
    private-network exception is never reused for a tenant without it.
    """

    def __init__(
        self, *, timeout: float = REQUEST_TIMEOUT, resolver: Resolver = system_resolve
    ) -> None:
        self._timeout = timeout
        self._resolver = resolver
        self._clients: dict[tuple[str, ...], httpx.AsyncClient] = {}

    def _client(self, allow_private: Sequence[str]) -> httpx.AsyncClient:
        key = tuple(sorted(allow_private))
        client = self._clients.get(key)
        if client is None:
            client = guarded_client(
                parse_networks(key),
                timeout=self._timeout,
                resolver=self._resolver,
                headers={"user-agent": "ccbridge-webhooks/1"},
            )
            self._clients[key] = client
        return client

    async def check_target(self, url: str, allow_private: Sequence[str]) -> None:
        """Subscription-time check (the connect-time check repeats it)."""
        host, port = check_url(url, allow_http=True)
        await pick_address_async(host, port, parse_networks(allow_private), self._resolver)

    async def send(
        self, url: str, body: bytes, headers: dict[str, str], allow_private: Sequence[str]
    ) -> SendResult:
        """POST once; any 2xx is success, everything else (3xx included) a failure."""
        started = time.perf_counter()
        try:
            response = await self._client(allow_private).post(url, content=body, headers=headers)
        except (httpx.HTTPError, OSError, ValueError) as exc:
            reason = failure_of(exc)
            log.info("webhook_send_failed", reason=reason, error=repr(exc)[:300])
            return SendResult(False, None, reason, _ms(started))
        ok = 200 <= response.status_code < 300
        return SendResult(
            ok,
            response.status_code,
            None if ok else http_failure(response.status_code),
            _ms(started),
        )

    async def close(self) -> None:
        """Close every pooled connection."""
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()


def _ms(started: float) -> int:
    return int((time.perf_counter() - started) * 1000)
