"""Seat state machine: signed-out, ready (示闲), not-ready (示忙), break (小休), on call, wrap-up.

``transition`` is pure: it takes the agent's status, one command or event, the injected ``now``,
the tenant's ``SeatPolicy`` and the floor context, and returns the new status with the effects
the services must carry out (pause or unpause queue members, deferred actions, ...). Floor
alerts (示忙 or 小休 too long) are judged by the floor rules (``domain/floor``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from enum import StrEnum

from ccbridge.domain.agents.policy import (
    ALLOWED,
    DailyCounter,
    Decision,
    Queued,
    RefusalCode,
    Refused,
    SeatPolicy,
    check_break,
)
from ccbridge.domain.calendar import local_date, require_aware


class AgentState(StrEnum):
    """Where a signed-in seat is; ``SIGNED_OUT`` is also the initial state."""

    SIGNED_OUT = "signed_out"
    READY = "ready"
    NOT_READY = "not_ready"
    BREAK = "break"
    ON_CALL = "on_call"
    AFTER_CALL_WORK = "after_call_work"


class DeferredAction(StrEnum):
    """What happens when the current call (and its wrap-up) is over."""

    PAUSE = "pause"
    SIGN_OUT = "sign_out"


# --- commands (from the agent or a supervisor) ---------------------------------------------


@dataclass(frozen=True, slots=True)
class SignIn:
    """签入; the agent starts ready unless ``ready`` is false."""

    ready: bool = True
    reason: str = ""


@dataclass(frozen=True, slots=True)
class SignOut:
    """签出."""


@dataclass(frozen=True, slots=True)
class SetReady:
    """示闲 (also ends a break or the wrap-up early)."""


@dataclass(frozen=True, slots=True)
class SetNotReady:
    """示忙 with an optional reason code."""

    reason: str = ""


@dataclass(frozen=True, slots=True)
class StartBreak:
    """小休 request; may be refused or queued by the break policy."""


@dataclass(frozen=True, slots=True)
class CancelBreakRequest:
    """Withdraw a queued break request."""


@dataclass(frozen=True, slots=True)
class PauseAfterCall:
    """Go not-ready once the current call and its wrap-up are over."""

    reason: str = ""


@dataclass(frozen=True, slots=True)
class SignOutAfterCall:
    """Sign out once the current call and its wrap-up are over."""


@dataclass(frozen=True, slots=True)
class CancelAfterCall:
    """Drop a deferred pause or sign-out."""


# --- events (from the PBX, the break queue or a timer) -------------------------------------


@dataclass(frozen=True, slots=True)
class CallStarted:
    """The agent is connected to a call (inbound, outbound or internal)."""


@dataclass(frozen=True, slots=True)
class CallEnded:
    """The agent's call is over."""


@dataclass(frozen=True, slots=True)
class BreakGranted:
    """A break slot of the floor became free for this agent's queued request."""


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed: ends the wrap-up when it is due."""


Command = (
    SignIn
    | SignOut
    | SetReady
    | SetNotReady
    | StartBreak
    | CancelBreakRequest
    | PauseAfterCall
    | SignOutAfterCall
    | CancelAfterCall
)
Event = CallStarted | CallEnded | BreakGranted | Tick
Input = Command | Event


# --- effects -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueueAddEffect:
    """Add the agent to its skill-group queues, paused or not."""

    paused: bool
    reason: str


@dataclass(frozen=True, slots=True)
class QueueRemoveEffect:
    """Remove the agent from its skill-group queues."""


@dataclass(frozen=True, slots=True)
class QueuePauseEffect:
    """Pause or unpause the agent in its queues, with the reason Asterisk records."""

    paused: bool
    reason: str


@dataclass(frozen=True, slots=True)
class DeferredSet:
    """A deferred action was registered for the end of the current call."""

    action: DeferredAction


@dataclass(frozen=True, slots=True)
class DeferredCleared:
    """A deferred action was carried out or dropped."""

    action: DeferredAction


Effect = QueueAddEffect | QueueRemoveEffect | QueuePauseEffect | DeferredSet | DeferredCleared


@dataclass(frozen=True, slots=True)
class AgentStatus:
    """Everything the state machine remembers about one signed-in (or signed-out) agent."""

    since: datetime
    state: AgentState = AgentState.SIGNED_OUT
    reason: str = ""
    """Not-ready reason (only meaningful in ``NOT_READY``)."""
    resume: AgentState = AgentState.READY
    """Where the agent goes back to after a call: ``READY`` or ``NOT_READY``."""
    resume_reason: str = ""
    deferred: DeferredAction | None = None
    deferred_reason: str = ""
    break_requested: bool = False
    breaks: DailyCounter = field(default_factory=DailyCounter)
    paused: bool = False
    pause_reason: str = ""
    """What the queues were last told (kept as is during a call)."""


@dataclass(frozen=True, slots=True)
class FloorContext:
    """Facts about other agents that a transition needs."""

    agents_on_break: int = 0
    """Agents of the same floor on break now, not counting this one."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """Result of a transition; a refusal leaves the status unchanged and has no effects."""

    status: AgentStatus
    effects: tuple[Effect, ...] = ()
    decision: Decision = ALLOWED

    @property
    def accepted(self) -> bool:
        """Say whether the input was applied (allowed or queued)."""
        return not isinstance(self.decision, Refused)


def queue_pause_for(
    state: AgentState, reason: str = "", current: tuple[bool, str] = (False, "")
) -> tuple[bool, str]:
    """Say whether an agent in ``state`` is paused in its queues and why.

    On a call (and when signed out, where the agent is no queue member) ``current`` is kept.
    """
    if state is AgentState.READY:
        return (False, "")
    if state is AgentState.NOT_READY:
        return (True, reason or "not-ready")
    if state is AgentState.BREAK:
        return (True, "break")
    if state is AgentState.AFTER_CALL_WORK:
        return (True, "wrapup")
    return current


_S = AgentState
_ALL_SIGNED_IN = frozenset({_S.READY, _S.NOT_READY, _S.BREAK, _S.ON_CALL, _S.AFTER_CALL_WORK})
_IDLE = (_S.READY, _S.NOT_READY, _S.AFTER_CALL_WORK)
_AFTER_CALL = frozenset({_S.READY, _S.NOT_READY, _S.SIGNED_OUT})


def _table() -> dict[tuple[AgentState, type[Input]], frozenset[AgentState]]:
    t: dict[tuple[AgentState, type[Input]], frozenset[AgentState]] = {
        (_S.SIGNED_OUT, SignIn): frozenset({_S.READY, _S.NOT_READY}),
        (_S.SIGNED_OUT, SignOut): frozenset({_S.SIGNED_OUT}),
        (_S.SIGNED_OUT, CallEnded): frozenset({_S.SIGNED_OUT}),
        (_S.SIGNED_OUT, Tick): frozenset({_S.SIGNED_OUT}),
        (_S.ON_CALL, CallStarted): frozenset({_S.ON_CALL}),
        (_S.ON_CALL, CallEnded): _AFTER_CALL | {_S.AFTER_CALL_WORK},
        (_S.AFTER_CALL_WORK, CallEnded): frozenset({_S.AFTER_CALL_WORK}),
        (_S.AFTER_CALL_WORK, Tick): _AFTER_CALL | {_S.AFTER_CALL_WORK},
    }
    for s in (_S.READY, _S.NOT_READY, _S.BREAK, _S.AFTER_CALL_WORK):
        t[(s, SignOut)] = frozenset({_S.SIGNED_OUT})
        t[(s, SetReady)] = frozenset({_S.READY})
        t[(s, SetNotReady)] = frozenset({_S.NOT_READY})
        t[(s, CallStarted)] = frozenset({_S.ON_CALL})
    for s in _IDLE:
        t[(s, StartBreak)] = frozenset({s, _S.BREAK})
        t[(s, BreakGranted)] = frozenset({_S.BREAK})
    t[(_S.BREAK, StartBreak)] = frozenset({_S.BREAK})
    for s in (_S.READY, _S.NOT_READY, _S.BREAK):
        t[(s, CallEnded)] = frozenset({s})
        t[(s, Tick)] = frozenset({s})
    for s in _ALL_SIGNED_IN:
        t[(s, CancelBreakRequest)] = frozenset({s})
    for s in (_S.ON_CALL, _S.AFTER_CALL_WORK):
        t[(s, PauseAfterCall)] = frozenset({s})
        t[(s, SignOutAfterCall)] = frozenset({s})
        t[(s, CancelAfterCall)] = frozenset({s})
    t[(_S.ON_CALL, Tick)] = frozenset({_S.ON_CALL})
    return t


TRANSITIONS: Mapping[tuple[AgentState, type[Input]], frozenset[AgentState]] = _table()
"""Allowed (state, input type) pairs and the states the agent may end up in; others are refused."""

_LABEL = {
    _S.SIGNED_OUT: "signed out",
    _S.READY: "ready (示闲)",
    _S.NOT_READY: "not ready (示忙)",
    _S.BREAK: "on break (小休)",
    _S.ON_CALL: "on a call",
    _S.AFTER_CALL_WORK: "in after-call work",
}
_ACTION: dict[type[Input], str] = {
    SignIn: "sign in",
    SignOut: "sign out",
    SetReady: "set ready",
    SetNotReady: "set not ready",
    StartBreak: "take a break",
    CancelBreakRequest: "cancel a break request",
    PauseAfterCall: "pause after this call",
    SignOutAfterCall: "sign out after this call",
    CancelAfterCall: "cancel the after-call action",
    CallStarted: "start a call",
    CallEnded: "end a call",
    BreakGranted: "start a granted break",
    Tick: "advance time",
}


def refusal_message(state: AgentState, inp: Input) -> str:
    """Return the message a user sees when ``inp`` is not allowed in ``state``."""
    if state is _S.SIGNED_OUT:
        return "You are signed out; sign in first."
    if state is _S.ON_CALL and isinstance(inp, SignOut):
        return "You are on a call; use 'sign out after this call' instead."
    if state is _S.ON_CALL and isinstance(inp, SetNotReady | StartBreak):
        return "You are on a call; use 'pause after this call' instead."
    if isinstance(inp, PauseAfterCall | SignOutAfterCall | CancelAfterCall):
        return f"There is no call to wait for: you are {_LABEL[state]}."
    return f"Cannot {_ACTION[type(inp)]} while {_LABEL[state]}."


def transition(
    status: AgentStatus,
    inp: Input,
    now: datetime,
    policy: SeatPolicy,
    ctx: FloorContext | None = None,
) -> Outcome:
    """Apply one command or event to ``status`` at ``now`` under the tenant's ``policy``."""
    require_aware(now)
    if isinstance(inp, SignIn) and status.state is not _S.SIGNED_OUT:
        return _refuse(status, RefusalCode.ALREADY_SIGNED_IN, "You are already signed in.")
    if (status.state, type(inp)) not in TRANSITIONS:
        return _refuse(status, RefusalCode.INVALID_TRANSITION, refusal_message(status.state, inp))
    return _dispatch(status, inp, now, policy, ctx or FloorContext())


def _dispatch(s: AgentStatus, inp: Input, now: datetime, p: SeatPolicy, c: FloorContext) -> Outcome:
    """Run the handler of ``inp``; the TRANSITIONS table has already allowed the pair."""
    match inp:
        case SignIn():
            return _sign_in(s, inp, now)
        case SignOut():
            return _sign_out(s, now)
        case SetReady():
            return _set_ready(s, now)
        case SetNotReady():
            return _set_not_ready(s, inp, now)
        case StartBreak():
            return _start_break(s, now, p, c)
        case BreakGranted():
            return _break_granted(s, now, p)
        case CancelBreakRequest():
            return _cancel_break_request(s)
        case PauseAfterCall() | SignOutAfterCall():
            return _defer(s, inp)
        case CancelAfterCall():
            return _cancel_after_call(s)
        case CallStarted():
            return _call_started(s, now)
        case CallEnded():
            return _call_ended(s, now, p)
        case Tick():
            return _tick(s, now, p)


def _refuse(status: AgentStatus, code: RefusalCode, message: str) -> Outcome:
    return Outcome(status, (), Refused(code, message))


def _enter(
    status: AgentStatus, state: AgentState, now: datetime, reason: str = ""
) -> tuple[AgentStatus, list[Effect]]:
    """Move to ``state`` and emit the queue-pause change it implies, if any."""
    effects: list[Effect] = []
    moved = status.state is not state
    paused, pause_reason = queue_pause_for(state, reason, (status.paused, status.pause_reason))
    if (paused, pause_reason) != (status.paused, status.pause_reason):
        effects.append(QueuePauseEffect(paused, pause_reason))
    new = replace(
        status,
        state=state,
        reason=reason if state is _S.NOT_READY else "",
        since=now if moved else status.since,
        paused=paused,
        pause_reason=pause_reason,
    )
    return new, effects


def _clear_deferred(status: AgentStatus, effects: list[Effect]) -> AgentStatus:
    if status.deferred is None:
        return status
    effects.append(DeferredCleared(status.deferred))
    return replace(status, deferred=None, deferred_reason="")


def _sign_in(s: AgentStatus, i: SignIn, now: datetime) -> Outcome:
    state = _S.READY if i.ready else _S.NOT_READY
    reason = "" if i.ready else i.reason
    paused, pause_reason = queue_pause_for(state, reason)
    fresh = AgentStatus(
        since=now,
        state=state,
        reason=reason,
        breaks=s.breaks,
        paused=paused,
        pause_reason=pause_reason,
    )
    return Outcome(fresh, (QueueAddEffect(paused, pause_reason),))


def _sign_out(s: AgentStatus, now: datetime) -> Outcome:
    if s.state is _S.SIGNED_OUT:
        return Outcome(s)
    effects: list[Effect] = []
    s = _clear_deferred(s, effects)
    effects.append(QueueRemoveEffect())
    out = AgentStatus(since=now, breaks=s.breaks)
    return Outcome(out, tuple(effects))


def _set_ready(s: AgentStatus, now: datetime) -> Outcome:
    effects: list[Effect] = []
    s = _clear_deferred(s, effects)
    new, pause = _enter(s, _S.READY, now)
    return Outcome(new, (*effects, *pause))


def _set_not_ready(s: AgentStatus, i: SetNotReady, now: datetime) -> Outcome:
    effects: list[Effect] = []
    s = _clear_deferred(s, effects)
    new, pause = _enter(s, _S.NOT_READY, now, i.reason)
    return Outcome(new, (*effects, *pause))


def _start_break(s: AgentStatus, now: datetime, p: SeatPolicy, c: FloorContext) -> Outcome:
    if s.state is _S.BREAK:
        return Outcome(s)
    day = local_date(now, p.timezone)
    decision = check_break(p.breaks, s.breaks.on(day), c.agents_on_break)
    if isinstance(decision, Refused):
        return Outcome(s, (), decision)
    if isinstance(decision, Queued):
        return Outcome(replace(s, break_requested=True), (), decision)
    return _begin_break(s, now, day)


def _begin_break(s: AgentStatus, now: datetime, day: date) -> Outcome:
    effects: list[Effect] = []
    s = _clear_deferred(s, effects)
    new, pause = _enter(s, _S.BREAK, now)
    new = replace(new, breaks=s.breaks.incremented(day), break_requested=False)
    return Outcome(new, (*effects, *pause))


def _break_granted(s: AgentStatus, now: datetime, p: SeatPolicy) -> Outcome:
    if not s.break_requested:
        return _refuse(s, RefusalCode.NO_BREAK_REQUESTED, "There is no pending break request.")
    day = local_date(now, p.timezone)
    decision = check_break(p.breaks, s.breaks.on(day), 0)
    if isinstance(decision, Refused):
        return Outcome(replace(s, break_requested=False), (), decision)
    return _begin_break(s, now, day)


def _cancel_break_request(s: AgentStatus) -> Outcome:
    return Outcome(replace(s, break_requested=False))


def _defer(s: AgentStatus, i: PauseAfterCall | SignOutAfterCall) -> Outcome:
    action = DeferredAction.PAUSE if isinstance(i, PauseAfterCall) else DeferredAction.SIGN_OUT
    reason = i.reason if isinstance(i, PauseAfterCall) else ""
    effects: list[Effect] = []
    if s.deferred is not None and s.deferred is not action:
        effects.append(DeferredCleared(s.deferred))
    if s.deferred is not action:
        effects.append(DeferredSet(action))
    return Outcome(replace(s, deferred=action, deferred_reason=reason), tuple(effects))


def _cancel_after_call(s: AgentStatus) -> Outcome:
    effects: list[Effect] = []
    return Outcome(_clear_deferred(s, effects), tuple(effects))


def _call_started(s: AgentStatus, now: datetime) -> Outcome:
    if s.state is _S.ON_CALL:
        return Outcome(s)
    if s.state is _S.READY:
        resume, reason = _S.READY, ""
    elif s.state is _S.NOT_READY:
        resume, reason = _S.NOT_READY, s.reason
    elif s.state is _S.BREAK:
        resume, reason = _S.NOT_READY, "after-break"
    else:  # after-call work: return where the previous call would have
        resume, reason = s.resume, s.resume_reason
    new, pause = _enter(s, _S.ON_CALL, now)
    return Outcome(replace(new, resume=resume, resume_reason=reason), tuple(pause))


def _call_ended(s: AgentStatus, now: datetime, p: SeatPolicy) -> Outcome:
    if s.state is not _S.ON_CALL:
        return Outcome(s)
    if p.wrapup > timedelta(0):
        new, pause = _enter(s, _S.AFTER_CALL_WORK, now)
        return Outcome(new, tuple(pause))
    return _finish_call(s, now)


def _finish_call(s: AgentStatus, now: datetime) -> Outcome:
    """Leave a call (or its wrap-up): a deferred action wins over the resume state."""
    effects: list[Effect] = []
    deferred, deferred_reason = s.deferred, s.deferred_reason
    s = _clear_deferred(s, effects)
    if deferred is DeferredAction.SIGN_OUT:
        effects.append(QueueRemoveEffect())
        return Outcome(AgentStatus(since=now, breaks=s.breaks), tuple(effects))
    if deferred is DeferredAction.PAUSE:
        new, pause = _enter(s, _S.NOT_READY, now, deferred_reason)
    else:
        new, pause = _enter(s, s.resume, now, s.resume_reason)
    return Outcome(new, (*effects, *pause))


def _tick(s: AgentStatus, now: datetime, p: SeatPolicy) -> Outcome:
    if s.state is _S.AFTER_CALL_WORK and now - s.since >= p.wrapup:
        return _finish_call(s, now)
    return Outcome(s)
