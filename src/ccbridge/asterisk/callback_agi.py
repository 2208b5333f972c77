"""FastAGI ``callback``: a caller who waited a routing policy's maximum time leaves a call-back
request (the dialplan's ``[ccbridge-route]`` runs it); a thank-you prompt confirms it."""

from __future__ import annotations

import re
from typing import Protocol

import structlog

from ccbridge.asterisk.agi.errors import AgiHangup
from ccbridge.asterisk.agi.server import DONE_VARIABLE
from ccbridge.asterisk.agi.session import AgiSession
from ccbridge.domain.access import TENANT_ID_RE
from ccbridge.domain.acd.membership import NAME_PATTERN

log = structlog.get_logger(__name__)

SCRIPT = "callback"
CONFIRMATION_PROMPT = "auth-thankyou"
"""A stock Asterisk sound ("Thank you.")."""
_CALLER = re.compile(r"^\+?[0-9]{3,20}$")
_DID = re.compile(r"^\+?[0-9]{1,16}$")


class CallbackDesk(Protocol):
    """Stores call-back requests (``services.callbacks.CallbackService``)."""

    async def request(
        self,
        tenant_id: str,
        *,
        caller: str,
        did: str,
        skill_group: str,
        call_id: str,
        waited_seconds: int,
    ) -> object:
        """Store the request and journal it."""
        ...


class CallbackHandler:
    """Read what the inbound route set on the channel and store the request."""

    def __init__(self, desk: CallbackDesk) -> None:
        self._desk = desk
        self.refused = 0

    async def __call__(self, session: AgiSession) -> None:
        """Store the request, then play the confirmation; a call without a tenant or a caller
        number to ring back is refused (logged) and hung up."""
        tenant = await session.get_variable("CCB_TENANT") or ""
        caller = session.callerid
        if not TENANT_ID_RE.fullmatch(tenant) or not _CALLER.fullmatch(caller):
            self.refused += 1
            log.warning("callback_refused", tenant=tenant[:40], uniqueid=session.uniqueid)
            await session.hangup()
            return
        did = await session.get_variable("CCB_DID") or ""
        group = await session.get_variable("CCB_GROUP") or ""
        waited = await session.get_variable("CCB_MAX_WAIT_SECONDS") or "0"
        await self._desk.request(
            tenant,
            caller=caller,
            did=did if _DID.fullmatch(did) else "",
            skill_group=group if NAME_PATTERN.fullmatch(group) else "",
            call_id=session.uniqueid,
            waited_seconds=int(waited) if waited.isdigit() else 0,
        )
        try:
            # Stored: the dialplan's node failover must not run it again on another node if
            # this one dies during the thank-you (that would store a second request).
            await session.set_variable(DONE_VARIABLE, SCRIPT)
            await session.stream_file(CONFIRMATION_PROMPT)
            await session.hangup()
        except AgiHangup:
            return
