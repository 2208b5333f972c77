"""Supervisor listen / whisper / barge on an agent's current call (ChanSpy), audited.

Only a supervisor or a tenant admin may spy, from the phone it is signed in on, which must be
one of the tenant's endpoints; the spied channel comes from the live call tracker, never from
the request, and passes the channel-name guard before it reaches an AMI header.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn, Protocol

import structlog

from ccbridge.domain.access import AccessDeniedError, Principal, Role
from ccbridge.domain.calls.model import CallRecord
from ccbridge.domain.calls.spy import CHANSPY_OPTIONS, SpyMode, check_channel
from ccbridge.domain.calls.tracker import interface_of_channel
from ccbridge.domain.endpoints import parse_interface
from ccbridge.errors import CcbridgeError, ConflictError, ErrorCode, NotFoundError
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.endpoints import EndpointGuard
from ccbridge.services.seat_ports import AgentRepo, SeatSession, SeatSessionRepo

log = structlog.get_logger(__name__)

SPY_ROLES = frozenset({Role.SUPERVISOR, Role.TENANT_ADMIN})
"""Who may listen in: the floor's supervisors and the tenant's admins (not a platform admin,
not an agent, not a CRM key)."""


class SpyPbx(Protocol):
    """The PBX side (``asterisk.call_control.AmiCallControl``)."""

    async def spy(
        self, supervisor_endpoint: str, agent_channel: str, mode: SpyMode, caller_id: str
    ) -> None:
        """Ring the supervisor's endpoint into ChanSpy on the agent's channel."""
        ...


class LiveCalls(Protocol):
    """The live call tracker (``CallTrackingService``)."""

    def open_calls(self) -> list[CallRecord]:
        """The calls in progress."""
        ...

    def live_channels(self, call_id: str) -> list[str]:
        """Names of the call's channels still up."""
        ...


class SpyRefusedError(ConflictError):
    """The spy cannot start now (409); ``reason`` says why."""

    def __init__(self, reason: str, detail: str, field: str | None = None) -> None:
        super().__init__(detail, field=field)
        self.reason = reason


class SpyRequestError(CcbridgeError):
    """The request names itself as its own supervisor (422 naming the field)."""

    code = ErrorCode.VALIDATION
    status = 422
    title = "Invalid request"


@dataclass(frozen=True, slots=True)
class SpyStarted:
    """What was asked of the PBX."""

    tenant_id: str
    agent_no: str
    supervisor_agent_no: str
    mode: SpyMode
    options: str
    call_id: str
    supervisor_interface: str


class SpyService:
    """Start ChanSpy for a supervisor on an agent's current call."""

    def __init__(
        self,
        *,
        calls: LiveCalls,
        sessions: SeatSessionRepo,
        agents: AgentRepo,
        endpoints: EndpointGuard,
        pbx: SpyPbx,
        audit: AuditRecorder,
        agents_context: str,
    ) -> None:
        self._calls = calls
        self._sessions = sessions
        self._agents = agents
        self._endpoints = endpoints
        self._pbx = pbx
        self._audit = audit
        self._agents_context = agents_context

    async def spy(
        self,
        who: Principal,
        tenant_id: str,
        agent_no: str,
        mode: SpyMode,
        supervisor_agent_no: str,
    ) -> SpyStarted:
        """Check who asks and from which phone, find the agent's channel, ring the supervisor."""
        detail = {"mode": mode.value, "supervisor_agent_no": supervisor_agent_no}
        try:
            started = await self._start(who, tenant_id, agent_no, mode, supervisor_agent_no)
        except (CcbridgeError, AccessDeniedError) as exc:
            refusal = {**detail, "refused": getattr(exc, "reason", type(exc).__name__)}
            await self._audit.record(who, tenant_id, "seat.spy.refused", "seat", agent_no, refusal)
            raise
        await self._audit.record(
            who, tenant_id, "seat.spy", "seat", agent_no, {**detail, "call_id": started.call_id}
        )
        log.info("seat_spy", tenant=tenant_id, agent_no=agent_no, mode=mode.value)
        return started

    async def _start(
        self,
        who: Principal,
        tenant_id: str,
        agent_no: str,
        mode: SpyMode,
        supervisor_agent_no: str,
    ) -> SpyStarted:
        if who.role not in SPY_ROLES or not who.has("seats:write"):
            raise AccessDeniedError("only a supervisor or a tenant admin may listen in")
        if who.agent_no is not None and who.agent_no != supervisor_agent_no:
            raise AccessDeniedError("this credential may only listen in from its own seat")
        if supervisor_agent_no == agent_no:
            raise SpyRequestError(
                "an agent cannot listen in on itself", field="body.supervisor_agent_no"
            )
        if await self._agents.get(tenant_id, agent_no) is None:
            raise NotFoundError(f"agent {agent_no} not found")
        phone = await self._supervisor_phone(tenant_id, supervisor_agent_no)
        seat = await self._sessions.get_open(tenant_id, agent_no)
        found = self._agent_channel(tenant_id, seat) if seat is not None else None
        if found is None:
            raise SpyRefusedError("NO_CURRENT_CALL", f"agent {agent_no} is not on a call")
        call, channel = found
        caller_id = f'"Spy {agent_no}" <{agent_no}>'
        await self._pbx.spy(phone, channel, mode, caller_id)
        return SpyStarted(
            tenant_id,
            agent_no,
            supervisor_agent_no,
            mode,
            CHANSPY_OPTIONS[mode],
            call.call_id,
            phone,
        )

    async def _supervisor_phone(self, tenant_id: str, supervisor_agent_no: str) -> str:
        """The interface the supervisor is signed in on, if it is one of the tenant's phones."""
        seat = await self._sessions.get_open(tenant_id, supervisor_agent_no)
        if seat is None:
            _not_signed_in(supervisor_agent_no, "is not signed in")
        owners = await self._endpoints.owners({seat.interface})
        if owners.get(seat.interface) != tenant_id or (
            parse_interface(seat.interface, self._agents_context) is None
        ):
            _not_signed_in(supervisor_agent_no, "is not on one of the tenant's phones")
        return seat.interface

    def _agent_channel(self, tenant_id: str, seat: SeatSession) -> tuple[CallRecord, str] | None:
        """The agent's current call and its own channel on it (checked for ChanSpy)."""
        for call in self._calls.open_calls():
            if call.tenant != tenant_id or call.answered_at is None or not call.segments:
                continue
            leg = call.segments[-1]
            if leg.ended_at is not None or leg.agent_interface != seat.interface:
                continue
            for channel in self._calls.live_channels(call.call_id):
                if interface_of_channel(channel) == seat.interface:
                    try:
                        return call, check_channel(channel)
                    except ValueError:
                        log.warning("seat_spy_channel_refused", channel=repr(channel))
                        return None
        return None


def _not_signed_in(supervisor_agent_no: str, why: str) -> NoReturn:
    raise SpyRefusedError(
        "SUPERVISOR_NOT_SIGNED_IN",
        f"supervisor {supervisor_agent_no} {why}",
        field="body.supervisor_agent_no",
    )
