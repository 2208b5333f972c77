"""FastAGI entry point for inbound calls: tag the call and choose its skill group.

This is the foundation's routing (DID → tenant and queue). The dialplan runs
``AGI(agi://ccbridge:4573/inbound)`` and then ``Queue(${CCB_QUEUE})``. When the tenant has an
active IVR flow, the flow runs instead of the fixed queue and sets ``CCB_ROUTE`` (queue,
transfer, voicemail or hangup) with its target; the queue contract is unchanged.

A number of a suspended or terminated tenant is treated as unrouted (the fallback route, else
hang up). The tenant's status comes from a cache, so a call rarely waits on the database.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import structlog

from ccbridge.asterisk.agi.session import AgiSession
from ccbridge.asterisk.ivr_runner import IvrRunner

log = structlog.get_logger(__name__)

SCRIPT = "inbound"
_DID = re.compile(r"^\+?[0-9]{1,32}$")


def did_of(env: Mapping[str, str]) -> str:
    """Return the first of ``agi_dnid``, ``agi_extension`` that is a plain number, else "".

    Asterisk sends ``agi_dnid: unknown`` when the channel has no DNID (Local channels, some
    trunks), so a non-numeric DNID must fall through to the extension the dialplan ran.
    """
    for key in ("agi_dnid", "agi_extension"):
        value = env.get(key) or ""
        if _DID.match(value):
            return value
    return ""


@dataclass(frozen=True, slots=True)
class InboundRoute:
    """Where calls to one DID go."""

    tenant: str
    queue: str


class InboundRouteHandler:
    """Answer the AGI request: set ``CCB_TENANT``, ``CCB_DID`` and ``CCB_QUEUE`` on the channel."""

    def __init__(
        self,
        routes: Mapping[str, InboundRoute],
        fallback: InboundRoute | None,
        ivr: IvrRunner | None = None,
        tenant_closed: Callable[[str], Awaitable[bool]] | None = None,
    ) -> None:
        self._routes = dict(routes)
        self._fallback = fallback
        self._ivr = ivr
        self._tenant_closed = tenant_closed
        self.unrouted = 0

    async def __call__(self, session: AgiSession) -> None:
        """Tag the channel; an unknown DID, or one of a tenant that is not active, takes the
        fallback route or hangs up."""
        did = did_of(session.env)
        route = await self._live(self._routes.get(did), did)
        if route is None:
            route = await self._live(self._fallback, did)
        if route is None:
            self.unrouted += 1
            log.warning("inbound_unrouted", did=did, uniqueid=session.env.get("agi_uniqueid"))
            await session.hangup()
            return
        await session.set_variable("CCB_TENANT", route.tenant)
        if did:
            await session.set_variable("CCB_DID", did)
        if self._ivr is not None and await self._ivr.run(session, route.tenant, did):
            return
        await session.set_variable("CCB_QUEUE", route.queue)

    async def _live(self, route: InboundRoute | None, did: str) -> InboundRoute | None:
        """*route* unless its tenant is suspended or terminated; a status that cannot be read
        lets the call through."""
        if route is None or self._tenant_closed is None:
            return route
        try:
            closed = await self._tenant_closed(route.tenant)
        except Exception:
            log.exception("inbound_tenant_status_unreadable", tenant=route.tenant, did=did)
            return route
        if closed:
            log.info("inbound_tenant_not_active", tenant=route.tenant, did=did)
            return None
        return route
