"""HTTP lookup to a tenant's CRM for the IVR: GET with a timeout, a size cap and an SSRF guard.

Only public addresses are called unless the host is allow-listed; redirects are not followed;
the answer must be a JSON object whose values are scalars without CR, LF or NUL (they may end
up in an AGI command). Any failure is ``ok=False`` and the flow takes its error branch.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Collection, Mapping
from urllib.parse import urlsplit

import httpx
import orjson
import structlog

from ccbridge.domain.ivr.engine import LookupAnswer

log = structlog.get_logger(__name__)

MAX_RESPONSE_BYTES = 64 * 1024
_CONTROL = re.compile(r"[\r\n\x00]")


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.partition("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


class HttpCrmLookup:
    """The ``CrmLookup`` port over httpx."""

    def __init__(
        self,
        *,
        allowed_hosts: Collection[str] = (),
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._allowed = {h.lower() for h in allowed_hosts}
        self._transport = transport

    async def _host_allowed(self, host: str, port: int) -> bool:
        if host.lower() in self._allowed:
            return True
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
        except OSError:
            return False
        return bool(infos) and all(_public(str(info[4][0])) for info in infos)

    async def lookup(self, url: str, query: Mapping[str, str], timeout_ms: int) -> LookupAnswer:
        """GET ``url`` with ``query``; return its JSON object's scalar fields as strings."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if parts.scheme not in ("http", "https") or not await self._host_allowed(host, port):
            log.warning("ivr_crm_refused", host=host)
            return LookupAnswer(False)
        try:
            async with (
                asyncio.timeout(timeout_ms / 1000),
                httpx.AsyncClient(
                    transport=self._transport, follow_redirects=False, timeout=timeout_ms / 1000
                ) as client,
                client.stream("GET", url, params=dict(query)) as resp,
            ):
                if resp.status_code != 200:
                    return LookupAnswer(False)
                body = b""
                async for chunk in resp.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_RESPONSE_BYTES:
                        return LookupAnswer(False)
            data = orjson.loads(body)
        except (TimeoutError, httpx.HTTPError, orjson.JSONDecodeError) as exc:
            log.info("ivr_crm_failed", host=host, error=type(exc).__name__)
            return LookupAnswer(False)
        if not isinstance(data, dict):
            return LookupAnswer(False)
        fields: dict[str, str] = {}
        for key, value in data.items():
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, str | int | float):
                text = str(value)
            else:
                continue
            if _CONTROL.search(text) or _CONTROL.search(key):
                log.warning("ivr_crm_control_characters", host=host, field=key[:40])
                return LookupAnswer(False)
            fields[key] = text
        return LookupAnswer(True, fields)
