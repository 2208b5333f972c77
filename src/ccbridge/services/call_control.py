"""Agent call control (SEAT-01/02): hold, mute, transfers, 3-way, hand-back to IVR,
click-to-call and hang-up on the agent's current call, each checked against the seat's kind
and, when it dials out, against the tenant's dial policy (toll fraud, SEC-01).

Every refusal is audited and raised with the rule's code; every step that changes the call is
recorded on the call record, from which the journal derives its events.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import NoReturn

import structlog

from ccbridge.domain.access import AccessDeniedError, Principal, Role
from ccbridge.domain.agents.policy import RefusalCode, Refused
from ccbridge.domain.calendar import tenant_zone
from ccbridge.domain.calls import control as steps
from ccbridge.domain.calls.control import ControlKind, Target, TargetKind, required_capability
from ccbridge.domain.calls.model import (
    CallControl,
    CallOffer,
    CallRecord,
    CallState,
    CallTransfer,
)
from ccbridge.domain.calls.numbers import DialledNumber, dialled_number
from ccbridge.domain.calls.tracker import interface_of_channel
from ccbridge.domain.dialing import DialPolicy, OutboundUsage
from ccbridge.domain.endpoints import parse_interface
from ccbridge.domain.leases.model import check_capability
from ccbridge.errors import (
    CcbridgeError,
    ConflictError,
    ErrorCode,
    InvalidRequestError,
    NotFoundError,
)
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.call_control_ports import (
    CallControlPbx,
    Dial,
    DialledCall,
    OriginateCall,
    OutboundLedger,
)
from ccbridge.services.calls import CallTrackingService
from ccbridge.services.ivr_ports import TenantFactsSource
from ccbridge.services.seat_ports import AgentRepo, SeatSession, SeatSessionRepo, SkillGroupRepo

log = structlog.get_logger(__name__)

RATE_WINDOW = timedelta(hours=1)
STARTING_GRACE = timedelta(seconds=60)
"""An originated call the PBX has not reported yet still counts as active this long."""
IVR_NODE_VAR = "CCB_IVR_NODE"
RETURN_TO_VAR = "CCB_RETURN_TO"
RETURN_AGENT_VAR = "CCB_RETURN_AGENT"
_NON_DIGIT = re.compile(r"\D")


class CallControlRefusedError(CcbridgeError):
    """A seat or dial-policy rule refused the request (403); ``reason`` names the rule."""

    code = ErrorCode.FORBIDDEN
    status = 403
    title = "Refused"

    def __init__(self, refusal: Refused) -> None:
        super().__init__(refusal.message)
        self.reason: RefusalCode = refusal.code


class CallControlRateLimitedError(CallControlRefusedError):
    """A rate or concurrency cap of the dial policy refused the call (429)."""

    code = ErrorCode.RATE_LIMITED
    status = 429
    title = "Too many calls"


class NoCurrentCallError(ConflictError):
    """The agent has no call to act on (409)."""


_RATE_RULES = frozenset(
    {
        RefusalCode.SEAT_RATE_LIMITED,
        RefusalCode.TENANT_RATE_LIMITED,
        RefusalCode.SEAT_CONCURRENCY_LIMITED,
        RefusalCode.TENANT_CONCURRENCY_LIMITED,
    }
)


@dataclass(frozen=True, slots=True)
class ControlResult:
    """What the API answers: the call acted on, the step, and whether it is on hold now."""

    call_id: str
    action: ControlKind
    held: bool


@dataclass(frozen=True, slots=True)
class _OnCall:
    """The agent's seat and the call it is on, with the two channels call control moves."""

    seat: SeatSession
    call: CallRecord
    customer: str
    agent: str


class MemoryOutboundLedger:
    """Agent-dialled calls of the last hour in this process's memory (implements
    ``OutboundLedger``): for tests and tools; a restart forgets them, another process never
    sees them. ``ccbridge serve`` counts in the database (``SqlOutboundLedger``)."""

    def __init__(self) -> None:
        self._recent: deque[tuple[str, DialledCall]] = deque()
        self._lock = asyncio.Lock()

    async def admit(
        self,
        tenant_id: str,
        agent_no: str,
        call_id: str,
        at: datetime,
        decide: Callable[[Sequence[DialledCall]], Refused | None],
    ) -> Refused | None:
        """Decide on the tenant's last hour and count the call unless refused."""
        async with self._lock:
            while self._recent and self._recent[0][1].at <= at - RATE_WINDOW:
                self._recent.popleft()
            mine = [d for t, d in self._recent if t == tenant_id]
            refused = decide(mine)
            if refused is None:
                self._recent.append((tenant_id, DialledCall(call_id, agent_no, at)))
            return refused


def outbound_usage(
    calls: Sequence[DialledCall], agent_no: str, is_live: Callable[[str, datetime], bool]
) -> OutboundUsage:
    """What the seat and the tenant dialled in the last hour, and how many are still up."""
    seat = [d for d in calls if d.agent_no == agent_no]
    return OutboundUsage(
        seat_last_hour=len(seat),
        tenant_last_hour=len(calls),
        seat_active=sum(1 for d in seat if is_live(d.call_id, d.at)),
        tenant_active=sum(1 for d in calls if is_live(d.call_id, d.at)),
    )


class CallControlService:
    """Carry out an agent's call-control request on the PBX and record it on the call."""

    def __init__(
        self,
        *,
        calls: CallTrackingService,
        sessions: SeatSessionRepo,
        agents: AgentRepo,
        groups: SkillGroupRepo,
        facts: TenantFactsSource,
        pbx: CallControlPbx,
        audit: AuditRecorder,
        now: Callable[[], datetime],
        agents_context: str,
        ledger: OutboundLedger | None = None,
    ) -> None:
        self._calls = calls
        self._sessions = sessions
        self._agents = agents
        self._groups = groups
        self._facts = facts
        self._pbx = pbx
        self._audit = audit
        self._now = now
        self._agents_context = agents_context
        self._ledger: OutboundLedger = ledger or MemoryOutboundLedger()

    # ------------------------------------------------------------------ hold, mute, hang-up

    async def hold(self, who: Principal, tenant_id: str, agent_no: str) -> ControlResult:
        """Customer on music on hold, the agent's line silent and free to consult."""
        on = await self._on_call(who, tenant_id, agent_no, ControlKind.HOLD)
        if on.call.held:
            raise ConflictError("the call is already on hold")
        await self._pbx.hold(on.customer, on.agent)
        return self._step(on, ControlKind.HOLD, steps.HELD)

    async def resume(self, who: Principal, tenant_id: str, agent_no: str) -> ControlResult:
        """Customer and agent talk again."""
        on = await self._on_call(who, tenant_id, agent_no, ControlKind.RESUME)
        if not on.call.held:
            raise ConflictError("the call is not on hold")
        await self._pbx.resume(on.customer, on.agent)
        return self._step(on, ControlKind.RESUME, steps.RESUMED)

    async def mute(
        self, who: Principal, tenant_id: str, agent_no: str, muted: bool
    ) -> ControlResult:
        """The customer stops (or starts again) hearing the agent (SEAT-13)."""
        kind = ControlKind.MUTE if muted else ControlKind.UNMUTE
        on = await self._on_call(who, tenant_id, agent_no, kind)
        await self._pbx.mute(on.agent, muted)
        return self._step(on, kind, steps.MUTED if muted else steps.UNMUTED)

    async def hangup(self, who: Principal, tenant_id: str, agent_no: str) -> ControlResult:
        """End the call (the customer's leg; the rest of the call follows)."""
        on = await self._on_call(who, tenant_id, agent_no, ControlKind.HANGUP)
        self._step(on, ControlKind.HANGUP, steps.HUNG_UP)
        await self._pbx.hangup(on.customer)
        return ControlResult(on.call.call_id, ControlKind.HANGUP, False)

    # ------------------------------------------------------------------ transfers

    async def transfer(
        self, who: Principal, tenant_id: str, agent_no: str, target: Target, *, attended: bool
    ) -> ControlResult:
        """Blind or attended transfer to an agent, a skill group (re-queued with the call's
        four variables) or an external number."""
        kind = ControlKind.ATTENDED_TRANSFER if attended else ControlKind.BLIND_TRANSFER
        on = await self._on_call(who, tenant_id, agent_no, kind, target)
        dial, intent = await self._destination(who, on, target, kind)
        self._calls.expect_transfer(on.call.call_id, intent)
        if attended:
            await self._pbx.attended_transfer(on.agent, dial)
        else:
            await self._pbx.blind_transfer(on.agent, dial)
        detail = (("mode", "attended" if attended else "blind"), ("target", intent.target))
        return self._step(on, kind, steps.TRANSFER_STARTED, detail)

    async def complete_transfer(
        self, who: Principal, tenant_id: str, agent_no: str
    ) -> ControlResult:
        """Complete the attended transfer: the agent leaves, customer and target talk."""
        on = await self._on_call(who, tenant_id, agent_no, ControlKind.COMPLETE_TRANSFER)
        intent = on.call.transfer_intent
        if intent is None or intent.kind != "attended":
            raise ConflictError("no attended transfer is in progress on this call")
        if intent.to_number is not None and on.call.direction != "internal":
            await self._refuse(who, on.seat, ControlKind.COMPLETE_TRANSFER, _transit())
        await self._pbx.hangup(on.agent)
        return ControlResult(on.call.call_id, ControlKind.COMPLETE_TRANSFER, on.call.held)

    async def cancel_transfer(self, who: Principal, tenant_id: str, agent_no: str) -> ControlResult:
        """Drop the consultation; the agent is back with the customer."""
        on = await self._on_call(who, tenant_id, agent_no, ControlKind.CANCEL_TRANSFER)
        await self._pbx.cancel_transfer(on.agent)
        self._calls.expect_transfer(on.call.call_id, None)
        return self._step(on, ControlKind.CANCEL_TRANSFER, steps.TRANSFER_CANCELLED)

    # ------------------------------------------------------------------ 3-way, IVR

    async def conference(
        self, who: Principal, tenant_id: str, agent_no: str, target: Target
    ) -> ControlResult:
        """A 3-way call: customer and agent move into a ConfBridge room, the third party
        (an agent or an external number) is rung into it."""
        on = await self._on_call(who, tenant_id, agent_no, ControlKind.CONFERENCE, target)
        if target.kind is TargetKind.GROUP:
            raise CallControlRefusedError(
                Refused(RefusalCode.INVALID_TRANSITION, "a 3-way call joins an agent or a number")
            )
        dial, intent = await self._destination(who, on, target, ControlKind.CONFERENCE)
        room = conference_room(on.call.call_id)
        facts = await self._facts.facts(tenant_id, self._now())
        await self._pbx.conference(
            on.customer,
            on.agent,
            room,
            dial,
            caller_id=_caller_id(on.call, facts.outbound.policy),
        )
        detail: tuple[tuple[str, str], ...] = (("room", room), ("target", intent.target))
        if intent.to_agent_no:
            detail += (("to_agent_no", intent.to_agent_no),)
        if intent.to_number:
            detail += (("to_number", intent.to_number),)
        return self._step(on, ControlKind.CONFERENCE, steps.CONFERENCED, detail)

    async def leave_conference(
        self, who: Principal, tenant_id: str, agent_no: str
    ) -> ControlResult:
        """The agent leaves the 3-way call; refused while that would leave a customer from a
        trunk alone with an external number (no transit, SEC-01)."""
        on = await self._on_call(who, tenant_id, agent_no, ControlKind.LEAVE_CONFERENCE)
        joined = [c for c in on.call.controls if c.kind == steps.CONFERENCED]
        if not joined:
            raise ConflictError("the call is not a 3-way call")
        if dict(joined[-1].detail).get("to_number") and on.call.direction != "internal":
            await self._refuse(who, on.seat, ControlKind.LEAVE_CONFERENCE, _transit())
        await self._pbx.hangup(on.agent)
        return self._step(on, ControlKind.LEAVE_CONFERENCE, steps.LEFT_CONFERENCE)

    async def return_to_ivr(
        self,
        who: Principal,
        tenant_id: str,
        agent_no: str,
        node: str,
        *,
        back_to_agent: bool,
    ) -> ControlResult:
        """Hand the caller back to the tenant's IVR at flow node *node* (e.g. a satisfaction
        survey); with *back_to_agent*, the caller comes back to this agent afterwards."""
        steps_node = _flow_node(node)
        on = await self._on_call(who, tenant_id, agent_no, ControlKind.RETURN_TO_IVR)
        variables = {IVR_NODE_VAR: steps_node}
        if back_to_agent:
            variables[RETURN_TO_VAR] = on.seat.interface
            variables[RETURN_AGENT_VAR] = on.seat.agent_no
        await self._pbx.return_to_ivr(on.customer, variables)
        detail = (
            ("flow_node", steps_node),
            ("back_to_agent", "true" if back_to_agent else "false"),
        )
        return self._step(on, ControlKind.RETURN_TO_IVR, steps.RETURNED_TO_IVR, detail)

    # ------------------------------------------------------------------ new calls

    async def dial(
        self, who: Principal, tenant_id: str, agent_no: str, number: str
    ) -> ControlResult:
        """Click-to-call: the agent's phone rings first, then the customer, who sees the
        tenant's caller ID. The four variables: the agent, its group, the caller ID and the
        dialled number."""
        seat = await self._seat(who, tenant_id, agent_no, ControlKind.OUTBOUND_CALL)
        at = self._now()
        facts = await self._facts.facts(tenant_id, at)
        policy = facts.outbound.policy
        if policy.caller_id is None:
            await self._refuse(
                who,
                seat,
                ControlKind.OUTBOUND_CALL,
                Refused(
                    RefusalCode.NO_CALLER_ID,
                    "the tenant has no outbound caller ID; the platform admin sets it on the "
                    "dial policy",
                ),
            )
        parsed = dialled_number(number, policy.region)
        call_id = new_call_id()
        refusal = facts.outbound.seat_refusal() or await self._admit_outbound(
            policy, parsed, seat, at, facts.timezone, facts.calendar.is_working_day, call_id
        )
        if refusal is not None:
            await self._refuse(who, seat, ControlKind.OUTBOUND_CALL, refusal, number=number)
        if parsed is None or policy.caller_id is None:  # pragma: no cover (refused above)
            raise AssertionError("unreachable")
        group = await self._seat_group(seat)
        record = CallRecord(
            call_id=call_id,
            started_at=at,
            state=CallState.AGENT_RINGING,
            tenant=tenant_id,
            caller=policy.caller_id,
            callee=parsed.e164,
            skill_group=group,
            agent_no=seat.agent_no,
            agent_interface=seat.interface,
            direction="outbound",
            offers=(CallOffer(seat.agent_no, seat.interface, group, at),),
        )
        self._calls.start_call(record)
        await self._pbx.originate(
            OriginateCall(
                endpoint=seat.interface,
                to=Dial("outbound", parsed.national),
                caller_id=_national_caller_id(policy),
                call_id=call_id,
                variables={
                    "CCB_TENANT": tenant_id,
                    "CCB_AGENT": seat.agent_no,
                    "CCB_GROUP": group or "",
                },
            )
        )
        await self._audit.record(
            who,
            tenant_id,
            "call.outbound_call",
            "call",
            call_id,
            {"agent_no": seat.agent_no, "number": parsed.e164},
        )
        return ControlResult(call_id, ControlKind.OUTBOUND_CALL, False)

    async def call_agent(
        self, who: Principal, tenant_id: str, agent_no: str, other: str
    ) -> ControlResult:
        """An internal call: this agent's phone rings first, then the other agent's."""
        seat = await self._seat(who, tenant_id, agent_no, ControlKind.INTERNAL_CALL)
        target = await self._sessions.get_open(tenant_id, other)
        if target is None or other == agent_no:
            raise NotFoundError(f"agent {other} is not signed in")
        at = self._now()
        group = await self._seat_group(seat)
        call_id = new_call_id()
        self._calls.start_call(
            CallRecord(
                call_id=call_id,
                started_at=at,
                state=CallState.AGENT_RINGING,
                tenant=tenant_id,
                caller=seat.agent_no,
                callee=other,
                skill_group=group,
                agent_no=seat.agent_no,
                agent_interface=seat.interface,
                direction="internal",
                offers=(CallOffer(seat.agent_no, seat.interface, group, at),),
            )
        )
        await self._pbx.originate(
            OriginateCall(
                endpoint=seat.interface,
                to=Dial("agent", self._endpoint_name(target)),
                caller_id=f'"{seat.agent_no}" <{seat.agent_no}>',
                call_id=call_id,
                variables={"CCB_TENANT": tenant_id, "CCB_AGENT": seat.agent_no},
            )
        )
        return ControlResult(call_id, ControlKind.INTERNAL_CALL, False)

    # ------------------------------------------------------------------ helpers

    def _step(
        self,
        on: _OnCall,
        kind: ControlKind,
        name: str,
        detail: tuple[tuple[str, str], ...] = (),
    ) -> ControlResult:
        step = CallControl(name, self._now(), on.seat.agent_no, detail)
        rec = self._calls.note(on.call.call_id, step) or on.call
        log.info("call_control", call_id=on.call.call_id, action=kind.value, agent=on.seat.agent_no)
        return ControlResult(on.call.call_id, kind, rec.held)

    async def _seat(
        self,
        who: Principal,
        tenant_id: str,
        agent_no: str,
        kind: ControlKind,
        target: Target | None = None,
    ) -> SeatSession:
        if not (who.has("seats:write") or (who.role is Role.AGENT and who.agent_no == agent_no)):
            raise AccessDeniedError("this credential may only control its own calls")
        seat = await self._sessions.get_open(tenant_id, agent_no)
        if seat is None:
            raise NoCurrentCallError(f"agent {agent_no} is not signed in")
        decision = check_capability(seat.kind, required_capability(kind, target))
        if isinstance(decision, Refused):
            await self._refuse(who, seat, kind, decision)
        return seat

    async def _on_call(
        self,
        who: Principal,
        tenant_id: str,
        agent_no: str,
        kind: ControlKind,
        target: Target | None = None,
    ) -> _OnCall:
        seat = await self._seat(who, tenant_id, agent_no, kind, target)
        for call in self._calls.open_calls():
            if call.tenant != tenant_id or not _is_agents(call, seat.interface):
                continue
            live = self._calls.live_channels(call.call_id)
            agent = next((c for c in live if interface_of_channel(c) == seat.interface), None)
            customer = next((c for c in live if interface_of_channel(c) != seat.interface), None)
            if agent is not None and customer is not None:
                return _OnCall(seat, call, customer, agent)
        raise NoCurrentCallError(f"agent {agent_no} has no call to act on")

    async def _seat_group(self, seat: SeatSession) -> str | None:
        """The queue of the agent's strongest skill group (an agent-dialled call's 技能组,
        named like an inbound call's: the queue)."""
        agent = await self._agents.get(seat.tenant_id, seat.agent_no)
        if agent is None or not agent.skills:
            return None
        name = max(agent.skills, key=lambda s: s.level).skill_group
        group = await self._groups.get(seat.tenant_id, name)
        return group.queue if group is not None else name

    def _endpoint_name(self, seat: SeatSession) -> str:
        parsed = parse_interface(seat.interface, self._agents_context)
        if parsed is None:
            raise ConflictError(f"agent {seat.agent_no} sits at a phone ccbridge cannot dial")
        return parsed[1]

    async def _destination(
        self, who: Principal, on: _OnCall, target: Target, kind: ControlKind
    ) -> tuple[Dial, CallTransfer]:
        """Where the target is in the dialplan, and the transfer as the call record tells it."""
        at = self._now()
        base = CallTransfer(
            "attended" if kind is ControlKind.ATTENDED_TRANSFER else "blind",
            at,
            on.seat.agent_no,
            "",
            from_group=on.call.segments[-1].skill_group if on.call.segments else None,
        )
        if target.kind is TargetKind.AGENT:
            other = await self._sessions.get_open(on.seat.tenant_id, target.value)
            if other is None or target.value == on.seat.agent_no:
                raise NotFoundError(f"agent {target.value} is not signed in")
            name = self._endpoint_name(other)
            return Dial("agent", name), _with(base, name, to_agent_no=target.value)
        if target.kind is TargetKind.GROUP:
            group = await self._groups.get(on.seat.tenant_id, target.value)
            if group is None:
                raise NotFoundError(f"skill group {target.value} not found")
            return Dial("queue", group.queue), _with(base, group.queue, to_group=group.queue)
        facts = await self._facts.facts(on.seat.tenant_id, at)
        policy = facts.outbound.policy
        parsed = dialled_number(target.value, policy.region)
        refusal = None
        if kind is ControlKind.BLIND_TRANSFER and on.call.direction != "internal":
            refusal = self._outbound_refusal(
                policy, parsed, on.seat, at, facts.timezone, facts.calendar.is_working_day
            )
            refusal = refusal or _transit()  # the number is fine, the transfer is transit
        else:
            refusal = await self._admit_outbound(
                policy,
                parsed,
                on.seat,
                at,
                facts.timezone,
                facts.calendar.is_working_day,
                on.call.call_id,
            )
        if refusal is not None:
            await self._refuse(who, on.seat, kind, refusal, number=target.value)
        if parsed is None:  # pragma: no cover (refused above)
            raise AssertionError("unreachable")
        return Dial("outbound", parsed.national), _with(
            base, parsed.national, to_number=parsed.e164
        )

    def _outbound_refusal(
        self,
        policy: DialPolicy,
        parsed: DialledNumber | None,
        seat: SeatSession,
        at: datetime,
        timezone: str,
        is_working_day: Callable[..., bool],
        recent: Sequence[DialledCall] = (),
    ) -> Refused | None:
        """The dial policy's verdict on *parsed* now, given the tenant's *recent* calls."""
        local = at.astimezone(tenant_zone(timezone))
        usage = outbound_usage(recent, seat.agent_no, self._is_live)
        return policy.outbound_refusal(
            parsed, usage, local=local.time(), working_day=is_working_day(local.date())
        )

    async def _admit_outbound(
        self,
        policy: DialPolicy,
        parsed: DialledNumber | None,
        seat: SeatSession,
        at: datetime,
        timezone: str,
        is_working_day: Callable[..., bool],
        call_id: str,
    ) -> Refused | None:
        """Check the dial policy against the ledger and count the call, as one step: two
        dials at once (in any process) can never both take the last place under a cap."""

        def decide(recent: Sequence[DialledCall]) -> Refused | None:
            return self._outbound_refusal(
                policy, parsed, seat, at, timezone, is_working_day, recent
            )

        return await self._ledger.admit(seat.tenant_id, seat.agent_no, call_id, at, decide)

    def _is_live(self, call_id: str, at: datetime) -> bool:
        rec = self._calls.get(call_id)
        if rec is None:
            return self._now() - at < STARTING_GRACE
        return not rec.state.is_final

    async def _refuse(
        self,
        who: Principal,
        seat: SeatSession,
        kind: ControlKind,
        refusal: Refused,
        *,
        number: str | None = None,
    ) -> NoReturn:
        """Audit the refusal, then raise it (403, or 429 for a cap)."""
        detail = {"action": kind.value, "rule": refusal.code.value, "message": refusal.message}
        if number is not None:
            detail["number"] = _shown(number)
        await self._audit.record(
            who, seat.tenant_id, "call_control.refused", "seat", seat.agent_no, detail
        )
        log.info("call_control_refused", agent=seat.agent_no, **detail)
        if refusal.code in _RATE_RULES:
            raise CallControlRateLimitedError(refusal)
        raise CallControlRefusedError(refusal)


def _with(base: CallTransfer, target: str, **to: str) -> CallTransfer:
    return CallTransfer(
        base.kind,
        base.at,
        base.from_agent_no,
        target,
        to_agent_no=to.get("to_agent_no"),
        to_group=to.get("to_group"),
        to_number=to.get("to_number"),
        from_group=base.from_group,
    )


def _transit() -> Refused:
    return Refused(
        RefusalCode.NO_TRANSIT,
        "a call from a trunk is never bridged out to another trunk without an agent on it "
        "(SEC-01); add the number to a 3-way call instead",
    )


def _is_agents(call: CallRecord, interface: str) -> bool:
    """Whether *interface* is the agent on *call* now (its open leg, or the caller of an
    agent-dialled call that has not been answered yet)."""
    if call.segments and call.segments[-1].ended_at is None:
        return call.segments[-1].agent_interface == interface
    return call.direction != "inbound" and call.agent_interface == interface


def _caller_id(call: CallRecord, policy: DialPolicy) -> str:
    return policy.caller_id or call.callee or ""


def _national_caller_id(policy: DialPolicy) -> str:
    """The tenant's caller ID as the trunk presents it (``<number>``)."""
    return f"<{policy.caller_id}>"


def _shown(value: str) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in value[:40])


def conference_room(call_id: str) -> str:
    """The ConfBridge room of a call: its Linkedid's digits (a plain dialplan extension)."""
    return _NON_DIGIT.sub("", call_id) or "0"


def new_call_id() -> str:
    """A Linkedid for a call ccbridge originates (Asterisk takes it as the ChannelId)."""
    return f"ccb-{uuid.uuid4().hex[:20]}"


def _flow_node(node: str) -> str:
    """Check a flow node id (422 naming ``body.flow_node`` when it cannot be one)."""
    try:
        return steps.check_flow_node(node)
    except ValueError as exc:
        raise InvalidRequestError(str(exc), field="body.flow_node") from None


MOVED_OUT_OF_QUEUE = frozenset({steps.HELD, steps.CONFERENCED})
"""Steps that take the agent's leg out of the queue's bridge (app_queue then reports the
member's call complete while the agent is still on it)."""


class SeatCallGate:
    """Keep a seat on its call while ccbridge has moved the call out of the queue's bridge.

    A hold or a 3-way call redirects both legs, and app_queue answers with ``AgentComplete``
    (as captured on Asterisk 22.10.1): taken literally, the seat would go to after-call work
    while the agent still talks. The gate defers that end until the agent's leg is really gone
    (:meth:`sweep`, run every few seconds).
    """

    def __init__(
        self, calls: CallTrackingService, handle: Callable[[str, bool], Awaitable[None]]
    ) -> None:
        self._calls = calls
        self._handle = handle
        self._deferred: dict[str, str] = {}
        """Call id → the member interface whose call end waits."""

    async def __call__(self, interface: str, started: bool) -> None:
        """The seat feed's handler: pass everything on except a deferred call end."""
        if not started:
            for call in self._calls.open_calls():
                moved = any(c.kind in MOVED_OUT_OF_QUEUE for c in call.controls)
                if moved and _is_agents(call, interface):
                    self._deferred[call.call_id] = interface
                    log.info("seat_call_end_deferred", interface=interface, call_id=call.call_id)
                    return
        await self._handle(interface, started)

    async def sweep(self) -> int:
        """End the seat's call for every deferred call the agent has left; return how many."""
        ended = 0
        for call_id, interface in list(self._deferred.items()):
            rec = self._calls.get(call_id)
            live = self._calls.live_channels(call_id)
            still_on = any(interface_of_channel(c) == interface for c in live)
            if rec is None or rec.state.is_final or not still_on:
                del self._deferred[call_id]
                await self._handle(interface, False)
                ended += 1
        return ended
