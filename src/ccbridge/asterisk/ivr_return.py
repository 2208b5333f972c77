"""FastAGI ``ivr-return``: a caller an agent handed back to the IVR (astercc's AgentToIvr).

Call control set ``CCB_IVR_NODE`` on the caller's channel and redirected it to
``ccbridge-ivr-return``, which runs ``AGI(agi://ccbridge:4573/ivr-return)``. This handler runs
the tenant's active flow from that node, with the call's ``CCB_TENANT`` and ``CCB_DID`` (set
when the call came in, so its four variables are unchanged). The flow ends as any flow does
(``CCB_ROUTE``); the dialplan then dials ``CCB_RETURN_TO`` (the agent's phone) when the agent
asked for the caller back, else follows the route.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog

from ccbridge.asterisk.agi.session import AgiSession
from ccbridge.asterisk.ivr_runner import IvrRunner
from ccbridge.domain.calls.control import FLOW_NODE_RE

log = structlog.get_logger(__name__)

SCRIPT = "ivr-return"


class IvrReturnHandler:
    """Start the tenant's flow at the node call control named."""

    def __init__(
        self, ivr: IvrRunner, tenant_closed: Callable[[str], Awaitable[bool]] | None = None
    ) -> None:
        self._ivr = ivr
        self._tenant_closed = tenant_closed
        self.refused = 0

    async def __call__(self, session: AgiSession) -> None:
        """Run the flow from ``CCB_IVR_NODE``; anything missing or closed hangs up."""
        tenant = await session.get_variable("CCB_TENANT") or ""
        did = await session.get_variable("CCB_DID") or ""
        node = await session.get_variable("CCB_IVR_NODE") or ""
        closed = self._tenant_closed is not None and tenant and await self._tenant_closed(tenant)
        if not tenant or not FLOW_NODE_RE.fullmatch(node) or closed:
            self.refused += 1
            log.warning("ivr_return_refused", tenant=tenant, node=node[:64], closed=bool(closed))
            await session.set_variable("CCB_ROUTE", "hangup")
            return
        if not await self._ivr.run(session, tenant, did, start_at=node):
            log.warning("ivr_return_no_flow", tenant=tenant, did=did)
            await session.set_variable("CCB_ROUTE", "hangup")
