"""The seat state machine: table-driven transitions and a property-based model check."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from ccbridge.domain.agents.policy import (
    BreakPolicy,
    Queued,
    RefusalCode,
    Refused,
    SeatPolicy,
)
from ccbridge.domain.agents.state import (
    TRANSITIONS,
    AgentState,
    AgentStatus,
    BreakGranted,
    CallEnded,
    CallStarted,
    CancelAfterCall,
    CancelBreakRequest,
    DeferredAction,
    DeferredCleared,
    DeferredSet,
    FloorContext,
    Input,
    Outcome,
    PauseAfterCall,
    QueueAddEffect,
    QueuePauseEffect,
    QueueRemoveEffect,
    SetNotReady,
    SetReady,
    SignIn,
    SignOut,
    SignOutAfterCall,
    StartBreak,
    Tick,
    queue_pause_for,
    transition,
)

T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # 09:00 in Shanghai
POLICY = SeatPolicy()
WRAPUP = SeatPolicy(wrapup=timedelta(seconds=30))
S = AgentState


def _status(state: AgentState, **kw: object) -> AgentStatus:
    paused, reason = queue_pause_for(state, str(kw.get("reason", "")))
    base = AgentStatus(since=T0, state=state, paused=paused, pause_reason=reason)
    return replace(base, **kw)  # type: ignore[arg-type]


def _run(
    status: AgentStatus,
    *inputs: Input,
    policy: SeatPolicy = POLICY,
    at: datetime = T0,
    ctx: FloorContext | None = None,
) -> Outcome:
    out = Outcome(status)
    for inp in inputs:
        out = transition(out.status, inp, at, policy, ctx)
    return out


@pytest.mark.parametrize(
    ("start", "inp", "end", "effects"),
    [
        (S.SIGNED_OUT, SignIn(), S.READY, (QueueAddEffect(False, ""),)),
        (S.SIGNED_OUT, SignIn(ready=False), S.NOT_READY, (QueueAddEffect(True, "not-ready"),)),
        (S.READY, SetNotReady("meeting"), S.NOT_READY, (QueuePauseEffect(True, "meeting"),)),
        (S.NOT_READY, SetReady(), S.READY, (QueuePauseEffect(False, ""),)),
        (S.READY, StartBreak(), S.BREAK, (QueuePauseEffect(True, "break"),)),
        (S.NOT_READY, StartBreak(), S.BREAK, (QueuePauseEffect(True, "break"),)),
        (S.BREAK, SetReady(), S.READY, (QueuePauseEffect(False, ""),)),
        (S.BREAK, SetNotReady(), S.NOT_READY, (QueuePauseEffect(True, "not-ready"),)),
        (S.READY, CallStarted(), S.ON_CALL, ()),
        (S.NOT_READY, CallStarted(), S.ON_CALL, ()),
        (S.READY, SignOut(), S.SIGNED_OUT, (QueueRemoveEffect(),)),
        (S.BREAK, SignOut(), S.SIGNED_OUT, (QueueRemoveEffect(),)),
        (S.READY, SetReady(), S.READY, ()),
        (S.SIGNED_OUT, SignOut(), S.SIGNED_OUT, ()),
        (S.ON_CALL, PauseAfterCall(), S.ON_CALL, (DeferredSet(DeferredAction.PAUSE),)),
        (S.ON_CALL, SignOutAfterCall(), S.ON_CALL, (DeferredSet(DeferredAction.SIGN_OUT),)),
        (S.AFTER_CALL_WORK, SetReady(), S.READY, (QueuePauseEffect(False, ""),)),
    ],
)
def test_allowed_transitions(
    start: AgentState, inp: Input, end: AgentState, effects: tuple[object, ...]
) -> None:
    out = _run(_status(start), inp)
    assert out.accepted
    assert out.status.state is end
    assert out.effects == effects
    assert end in TRANSITIONS[(start, type(inp))]


@pytest.mark.parametrize(
    ("start", "inp", "code", "message"),
    [
        (
            S.SIGNED_OUT,
            SetReady(),
            RefusalCode.INVALID_TRANSITION,
            "You are signed out; sign in first.",
        ),
        (
            S.SIGNED_OUT,
            StartBreak(),
            RefusalCode.INVALID_TRANSITION,
            "You are signed out; sign in first.",
        ),
        (
            S.SIGNED_OUT,
            CallStarted(),
            RefusalCode.INVALID_TRANSITION,
            "You are signed out; sign in first.",
        ),
        (S.READY, SignIn(), RefusalCode.ALREADY_SIGNED_IN, "You are already signed in."),
        (S.ON_CALL, SignIn(), RefusalCode.ALREADY_SIGNED_IN, "You are already signed in."),
        (
            S.ON_CALL,
            SignOut(),
            RefusalCode.INVALID_TRANSITION,
            "You are on a call; use 'sign out after this call' instead.",
        ),
        (
            S.ON_CALL,
            SetNotReady(),
            RefusalCode.INVALID_TRANSITION,
            "You are on a call; use 'pause after this call' instead.",
        ),
        (
            S.ON_CALL,
            StartBreak(),
            RefusalCode.INVALID_TRANSITION,
            "You are on a call; use 'pause after this call' instead.",
        ),
        (
            S.ON_CALL,
            SetReady(),
            RefusalCode.INVALID_TRANSITION,
            "Cannot set ready while on a call.",
        ),
        (
            S.READY,
            PauseAfterCall(),
            RefusalCode.INVALID_TRANSITION,
            "There is no call to wait for: you are ready (示闲).",
        ),
        (
            S.BREAK,
            BreakGranted(),
            RefusalCode.INVALID_TRANSITION,
            "Cannot start a granted break while on break (小休).",
        ),
        (
            S.READY,
            BreakGranted(),
            RefusalCode.NO_BREAK_REQUESTED,
            "There is no pending break request.",
        ),
    ],
)
def test_refused_transitions(
    start: AgentState, inp: Input, code: RefusalCode, message: str
) -> None:
    before = _status(start)
    out = _run(before, inp)
    assert out.decision == Refused(code, message)
    assert out.status == before
    assert out.effects == ()


def test_fourth_break_of_the_day_is_refused_and_counter_resets_next_day() -> None:
    status = _run(_status(S.SIGNED_OUT), SignIn()).status
    for _ in range(3):
        status = _run(status, StartBreak(), SetReady()).status
    out = _run(status, StartBreak())
    assert isinstance(out.decision, Refused)
    assert out.decision.code is RefusalCode.BREAK_LIMIT_PER_DAY
    next_morning = T0 + timedelta(days=1)
    assert _run(status, StartBreak(), at=next_morning).status.state is S.BREAK


def test_floor_cap_refuses_or_queues_then_grants() -> None:
    ready = _status(S.READY)
    full = FloorContext(agents_on_break=3)
    out = _run(ready, StartBreak(), ctx=full)
    assert isinstance(out.decision, Refused)
    assert out.decision.code is RefusalCode.FLOOR_BREAK_CAP
    queueing = SeatPolicy(breaks=BreakPolicy(queue_when_floor_full=True))
    out = _run(ready, StartBreak(), policy=queueing, ctx=full)
    assert isinstance(out.decision, Queued)
    assert out.status.state is S.READY
    assert out.status.break_requested
    granted = _run(out.status, BreakGranted(), policy=queueing)
    assert granted.status.state is S.BREAK
    assert not granted.status.break_requested
    cancelled = _run(out.status, CancelBreakRequest(), BreakGranted(), policy=queueing)
    assert isinstance(cancelled.decision, Refused)


def test_time_alone_never_changes_not_ready_or_break() -> None:
    """示忙 and 小休 overruns are floor alerts (domain/floor), not seat transitions."""
    for start in (SetNotReady("toilet"), StartBreak()):
        status = _run(_status(S.READY), start).status
        out = _run(status, Tick(), at=T0 + timedelta(hours=2))
        assert (out.status, out.effects) == (status, ())


def test_pause_after_this_call() -> None:
    status = _run(_status(S.READY), CallStarted(), PauseAfterCall("lunch")).status
    out = _run(status, CallEnded())
    assert out.status.state is S.NOT_READY
    assert out.status.reason == "lunch"
    assert out.effects == (DeferredCleared(DeferredAction.PAUSE), QueuePauseEffect(True, "lunch"))


def test_sign_out_after_this_call_waits_for_wrapup() -> None:
    status = _run(_status(S.READY), CallStarted(), SignOutAfterCall(), policy=WRAPUP).status
    acw = _run(status, CallEnded(), policy=WRAPUP)
    assert acw.status.state is S.AFTER_CALL_WORK
    assert acw.effects == (QueuePauseEffect(True, "wrapup"),)
    early = _run(acw.status, Tick(), policy=WRAPUP, at=T0 + timedelta(seconds=29))
    assert early.status.state is S.AFTER_CALL_WORK
    done = _run(acw.status, Tick(), policy=WRAPUP, at=T0 + timedelta(seconds=30))
    assert done.status.state is S.SIGNED_OUT
    assert done.effects == (DeferredCleared(DeferredAction.SIGN_OUT), QueueRemoveEffect())


def test_cancel_after_call_and_resume_previous_state() -> None:
    status = _run(_status(S.NOT_READY, reason="training"), CallStarted(), SignOutAfterCall()).status
    out = _run(status, CancelAfterCall(), CallEnded())
    assert out.status.state is S.NOT_READY
    assert out.status.reason == "training"


def test_call_keeps_queue_pause_as_is() -> None:
    on_call = _run(_status(S.NOT_READY, reason="x"), CallStarted())
    assert on_call.effects == ()
    assert (on_call.status.paused, on_call.status.pause_reason) == (True, "x")


def test_naive_now_is_rejected() -> None:
    with pytest.raises(ValueError, match="aware"):
        transition(_status(S.READY), Tick(), datetime(2026, 1, 1), POLICY)  # noqa: DTZ001


def test_queue_pause_for() -> None:
    assert queue_pause_for(S.READY, "x") == (False, "")
    assert queue_pause_for(S.NOT_READY, "") == (True, "not-ready")
    assert queue_pause_for(S.NOT_READY, "lunch") == (True, "lunch")
    assert queue_pause_for(S.BREAK) == (True, "break")
    assert queue_pause_for(S.AFTER_CALL_WORK) == (True, "wrapup")
    assert queue_pause_for(S.ON_CALL, current=(True, "lunch")) == (True, "lunch")


def test_every_state_has_an_exit_and_a_way_back_to_signed_out() -> None:
    for state in AgentState:
        assert any(key[0] is state for key in TRANSITIONS)
        assert any(
            S.SIGNED_OUT in targets for key, targets in TRANSITIONS.items() if key[0] is state
        )


_INPUTS = st.one_of(
    st.builds(SignIn, st.booleans(), st.sampled_from(["", "meeting"])),
    st.just(SignOut()),
    st.just(SetReady()),
    st.builds(SetNotReady, st.sampled_from(["", "lunch", "training"])),
    st.just(StartBreak()),
    st.just(CancelBreakRequest()),
    st.builds(PauseAfterCall, st.sampled_from(["", "lunch"])),
    st.just(SignOutAfterCall()),
    st.just(CancelAfterCall()),
    st.just(CallStarted()),
    st.just(CallEnded()),
    st.just(BreakGranted()),
    st.just(Tick()),
)


class SeatMachine(RuleBasedStateMachine):
    """Random command/event sequences against a model of what the queues were told."""

    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.policy = POLICY
        self.status = AgentStatus(since=T0)
        self.member = False
        self.queue_pause: tuple[bool, str] = (False, "")
        self.breaks_per_day: dict[object, int] = {}

    @initialize(
        wrapup=st.sampled_from([0, 30]),
        queue=st.booleans(),
    )
    def setup(self, wrapup: int, queue: bool) -> None:
        self.policy = SeatPolicy(
            breaks=BreakPolicy(queue_when_floor_full=queue), wrapup=timedelta(seconds=wrapup)
        )

    @rule(inp=_INPUTS, advance=st.integers(0, 20 * 60), on_break=st.integers(0, 5))
    def step(self, inp: Input, advance: int, on_break: int) -> None:
        self.now += timedelta(seconds=advance)
        before = self.status
        out = transition(before, inp, self.now, self.policy, FloorContext(on_break))
        assert out.status.state in AgentState
        if isinstance(out.decision, Refused):
            assert out.status == before
            assert out.effects == ()
            return
        assert out.status.state in TRANSITIONS[(before.state, type(inp))]
        for effect in out.effects:
            if isinstance(effect, QueueAddEffect):
                assert not self.member
                self.member = True
                self.queue_pause = (effect.paused, effect.reason)
            elif isinstance(effect, QueueRemoveEffect):
                assert self.member
                self.member = False
            elif isinstance(effect, QueuePauseEffect):
                assert self.member
                self.queue_pause = (effect.paused, effect.reason)
        if out.status.state is S.BREAK and before.state is not S.BREAK:
            day = out.status.breaks.day
            self.breaks_per_day[day] = self.breaks_per_day.get(day, 0) + 1
        self.status = out.status

    @invariant()
    def queues_match_the_state(self) -> None:
        state = self.status.state
        assert self.member == (state is not S.SIGNED_OUT)
        if state is S.SIGNED_OUT:
            assert self.status.deferred is None
            return
        assert self.queue_pause == (self.status.paused, self.status.pause_reason)
        if state is not S.ON_CALL:
            assert self.queue_pause == queue_pause_for(state, self.status.reason)

    @invariant()
    def deferred_only_around_calls(self) -> None:
        if self.status.deferred is not None:
            assert self.status.state in (S.ON_CALL, S.AFTER_CALL_WORK)

    @invariant()
    def at_most_three_breaks_a_day(self) -> None:
        assert all(n <= 3 for n in self.breaks_per_day.values())


SeatMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestSeatMachine = SeatMachine.TestCase
