"""HTTP lookup to a tenant's CRM for the IVR: GET with a timeout, a size cap and the egress guard.

Only public addresses are called unless a platform admin allow-listed the network for the
tenant (``services.egress``); the connection goes to the checked address (no DNS rebinding);
redirects are not followed; the answer must be a JSON object whose values are scalars without
CR, LF or NUL (they may end up in an AGI command). Any failure is ``ok=False`` and the flow
takes its error branch.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from urllib.parse import urlsplit

import httpx
import orjson
import structlog

from ccbridge.domain.egress import EgressError, EgressRefusedError, IpNetwork
from ccbridge.domain.ivr.engine import LookupAnswer
from ccbridge.egress.failures import failure_of
from ccbridge.egress.http import guarded_transport
from ccbridge.egress.resolve import Resolver, pick_address_async, system_resolve

log = structlog.get_logger(__name__)

MAX_RESPONSE_BYTES = 64 * 1024
_CONTROL = re.compile(r"[\r\n\x00]")

AllowFor = Callable[[str], Awaitable[Sequence[IpNetwork]]]
"""A tenant's egress allow-list (``services.egress.EgressPolicy.networks``)."""


async def _nothing_allowed(tenant_id: str) -> Sequence[IpNetwork]:  # noqa: ARG001
    return ()


class HttpCrmLookup:
    """The ``CrmLookup`` port over httpx."""

    def __init__(
        self,
        *,
        allow_for: AllowFor = _nothing_allowed,
        resolver: Resolver = system_resolve,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """*transport* replaces the guarded one in tests (the address check still runs)."""
        self._allow_for = allow_for
        self._resolver = resolver
        self._transport = transport

    async def _allowed(self, tenant_id: str) -> Sequence[IpNetwork]:
        """The tenant's allow-list; none when it cannot be read (fail closed, keep the call)."""
        try:
            return await self._allow_for(tenant_id)
        except Exception:  # the database may be away: public CRMs still work
            log.warning("ivr_crm_allow_list_unavailable", tenant=tenant_id, exc_info=True)
            return ()

    async def lookup(
        self, tenant_id: str, url: str, query: Mapping[str, str], timeout_ms: int
    ) -> LookupAnswer:
        """GET ``url`` with ``query``; return its JSON object's scalar fields as strings."""
        parts = urlsplit(url)
        host = parts.hostname or ""
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            if parts.scheme not in ("http", "https") or not host:
                raise EgressRefusedError(category="form")
            allow = await self._allowed(tenant_id)
            await pick_address_async(host, port, allow, self._resolver)
        except (EgressRefusedError, ValueError) as exc:
            log.warning("ivr_crm_refused", tenant=tenant_id, host=host[:100], reason=repr(exc))
            return LookupAnswer(False)
        transport = self._transport or guarded_transport(allow, self._resolver)
        try:
            async with (
                asyncio.timeout(timeout_ms / 1000),
                httpx.AsyncClient(
                    transport=transport,
                    follow_redirects=False,
                    trust_env=False,
                    timeout=timeout_ms / 1000,
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
        except (TimeoutError, httpx.HTTPError, OSError, EgressError, orjson.JSONDecodeError) as exc:
            log.info("ivr_crm_failed", tenant=tenant_id, host=host[:100], reason=failure_of(exc))
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
