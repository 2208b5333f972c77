"""E.164 rules, the four variables per leg through transfers, and event derivation."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from ccbridge.domain.calls.events import (
    AgentAnswered,
    AgentRinging,
    AttendedTransferred,
    BlindTransferred,
    CallerJoinedQueue,
    ChannelCreated,
    ChannelHungUp,
    ChannelStateChanged,
    ChannelVariableSet,
    TelephonyEvent,
)
from ccbridge.domain.calls.model import CallRecord
from ccbridge.domain.calls.numbers import phone_number, to_e164
from ccbridge.domain.calls.tracker import CallTracker, interface_of_channel
from ccbridge.domain.journal.derive import call_events

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
L1 = "1795433102.17"


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("13800138000", "+8613800138000"),
        ("138-0013-8000", "+8613800138000"),
        ("8613800138000", "+8613800138000"),
        ("+8613800138000", "+8613800138000"),
        ("008613800138000", "+8613800138000"),
        ("4008001234", "+864008001234"),
        ("8008101234", "+868008101234"),
        ("02087654321", "+862087654321"),
        ("01012345678", "+861012345678"),
        ("075512345678", "+8675512345678"),
        ("+14155550123", "+14155550123"),
        ("95588", None),
        ("110", None),
        ("1101", None),
        ("anonymous", None),
        ("", None),
        ("12345678901", None),  # 11 digits but not a mobile prefix
    ],
)
def test_e164_rules(raw: str, e164: str | None) -> None:
    assert to_e164(raw) == e164


def test_original_form_is_kept() -> None:
    num = phone_number("138 0013 8000")
    assert num is not None
    assert (num.original, num.e164, num.best) == ("138 0013 8000", "+8613800138000", num.e164)
    assert phone_number("95588").best == "95588"  # type: ignore[union-attr]
    assert phone_number(None) is None


def test_interface_of_channel() -> None:
    assert interface_of_channel("Local/2002@agents-0000000a;1") == "Local/2002@agents"
    assert interface_of_channel("PJSIP/2002-0000000b") == "PJSIP/2002"


def _at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def _queued_call() -> list[TelephonyEvent]:
    return [
        ChannelCreated(_at(0), L1, L1, "PJSIP/trunk-1", "13800138000", None, "4008001234", "in"),
        ChannelVariableSet(_at(0.1), L1, L1, "PJSIP/trunk-1", "CCB_TENANT", "t1"),
        ChannelVariableSet(_at(0.2), L1, L1, "PJSIP/trunk-1", "CCB_X_IVR_CHOICE", "2"),
        ChannelStateChanged(_at(0.3), L1, L1, "PJSIP/trunk-1", "Up", "13800138000", None),
        CallerJoinedQueue(_at(1), L1, L1, "PJSIP/trunk-1", "t1-sales", "13800138000", None),
        AgentRinging(_at(2), L1, L1, "PJSIP/trunk-1", "t1-sales", "Local/1101@agents", "1101 A"),
        AgentAnswered(_at(3), L1, L1, "PJSIP/trunk-1", "t1-sales", "Local/1101@agents", "1101 A"),
    ]


def _run(events: list[TelephonyEvent]) -> tuple[CallTracker, CallRecord]:
    tracker = CallTracker()
    tracker.apply_all(events)
    rec = tracker.get(L1)
    assert rec is not None
    return tracker, rec


def test_blind_transfer_opens_a_leg_when_the_target_answers() -> None:
    events = [
        *_queued_call(),
        BlindTransferred(_at(10), L1, L1, "PJSIP/trunk-1", "1103", "agents", "Local/1101"),
        ChannelCreated(
            _at(10.1), L1, "9.1", "Local/1103@agents-00000009;1", None, None, "1103", "agents"
        ),
        ChannelStateChanged(_at(12), L1, "9.1", "Local/1103@agents-00000009;1", "Up", None, None),
        ChannelHungUp(_at(20), L1, L1, "PJSIP/trunk-1", "Normal Clearing"),
    ]
    _, rec = _run(events)
    assert [(s.agent_no, s.via, s.skill_group) for s in rec.segments] == [
        ("1101", "queue", "t1-sales"),
        ("1103", "blind_transfer", "t1-sales"),
    ]
    assert rec.segments[0].ended_at == _at(12)
    assert rec.segments[1].ended_at == _at(20)
    assert rec.agent_no == "1101"  # the conversation's first answering agent stays frozen
    assert rec.current_agent_no == "1103"
    assert rec.extras == (("ivr_choice", "2"),)


def test_blind_transfer_target_that_answers_before_the_transfer_event_gets_the_leg() -> None:
    # A real Asterisk can dial, answer and bridge Local/1103@agents 0.5 ms before it sends
    # BlindTransfer (captured on 22.10.1): the leg must open all the same, at the answer.
    events = [
        *_queued_call(),
        ChannelCreated(
            _at(10.0), L1, "9.1", "Local/1103@agents-00000009;1", None, None, "1103", "agents"
        ),
        ChannelStateChanged(_at(10.1), L1, "9.1", "Local/1103@agents-00000009;1", "Up", None, None),
        BlindTransferred(_at(10.1005), L1, L1, "PJSIP/trunk-1", "1103", "agents", "Local/1101"),
        ChannelHungUp(_at(20), L1, L1, "PJSIP/trunk-1", "Normal Clearing"),
    ]
    _, rec = _run(events)
    assert [(s.agent_no, s.via, s.skill_group) for s in rec.segments] == [
        ("1101", "queue", "t1-sales"),
        ("1103", "blind_transfer", "t1-sales"),
    ]
    assert rec.segments[0].ended_at == _at(10.1)
    assert rec.current_agent_no == "1103"
    assert rec.pending_target is None


def test_blind_transfer_back_to_a_queue_uses_the_queue_answer() -> None:
    events = [
        *_queued_call(),
        BlindTransferred(_at(10), L1, L1, "PJSIP/trunk-1", "t1-support", "queues", "x"),
        CallerJoinedQueue(_at(11), L1, L1, "PJSIP/trunk-1", "t1-support", "13800138000", None),
        AgentAnswered(_at(13), L1, L1, "PJSIP/trunk-1", "t1-support", "Local/1201@agents", "1201"),
    ]
    _, rec = _run(events)
    assert [(s.agent_no, s.via, s.skill_group) for s in rec.segments] == [
        ("1101", "queue", "t1-sales"),
        ("1201", "blind_transfer", "t1-support"),
    ]
    assert rec.skill_group == "t1-sales"  # first queue stays the conversation's 技能组


def test_attended_transfer_merges_the_consultation_call() -> None:
    l2 = "1795433110.30"
    events = [
        *_queued_call(),
        ChannelCreated(_at(5), l2, l2, "PJSIP/1101-00000003", "1101", None, "1102", "agents"),
        ChannelCreated(_at(5.1), l2, "9.2", "PJSIP/1102-00000004", "1102", None, "1102", "agents"),
        AttendedTransferred(
            _at(9),
            L1,
            L1,
            "PJSIP/trunk-1",
            l2,
            "PJSIP/1102-00000004",
            "1102",
            "Local/1101@agents-00000001;1",
            "Bridge",
        ),
        ChannelHungUp(_at(9.1), l2, l2, "PJSIP/1101-00000003", "Normal Clearing"),
        ChannelHungUp(_at(30), L1, L1, "PJSIP/trunk-1", "Normal Clearing"),
        ChannelHungUp(_at(30.1), l2, "9.2", "PJSIP/1102-00000004", "Normal Clearing"),
    ]
    tracker, rec = _run(events)
    assert [(s.agent_no, s.via) for s in rec.segments] == [
        ("1101", "queue"),
        ("1102", "attended_transfer"),
    ]
    consult = tracker.get(l2)
    assert consult is not None
    assert consult.merged_into == L1
    assert rec.state.value == "ended"
    assert rec.ended_at == _at(30)
    assert call_events(None, consult) == []  # the consultation is no CRM call


def _untold(at: float, dest: str = "Bridge") -> AttendedTransferred:
    """An ``AttendedTransfer`` without ``TransferTarget*`` headers, as Asterisk sends one
    completed while the target still rang (tests/fixtures/ccbridge-captures/)."""
    return AttendedTransferred(
        _at(at), L1, L1, "PJSIP/trunk-1", None, None, None, "Local/1101@agents-00000001;1", dest
    )


def _legs_of(agent: str, n: int, at: float) -> list[TelephonyEvent]:
    """A Local pair of *agent* created in the customer's call (Linkedid L1)."""
    return [
        ChannelCreated(
            _at(at),
            L1,
            f"9.{n}{half}",
            f"Local/{agent}@agents-0000000{n};{half}",
            None,
            None,
            agent,
            "agents",
        )
        for half in (1, 2)
    ]


def test_a_transfer_completed_while_the_target_rings_finds_its_target() -> None:
    events = [
        *_queued_call(),
        *_legs_of("1101", 1, 2),  # agent A's member leg
        *_legs_of("1102", 2, 8),  # A's *2 dials B from A's leg: B joins the call's Linkedid
        _untold(9),
    ]
    _, rec = _run(events)
    assert [(s.agent_no, s.via, s.ended_at) for s in rec.segments] == [
        ("1101", "queue", _at(9)),
        ("1102", "attended_transfer", None),
    ]
    assert [(t.kind, t.from_agent_no, t.target) for t in rec.transfers] == [
        ("attended", "1101", "1102")
    ]


def test_an_untold_three_way_target_is_found_too_and_a_stays() -> None:
    events = [*_queued_call(), *_legs_of("1101", 1, 2), *_legs_of("1102", 2, 8)]
    _, rec = _run([*events, _untold(9, "Threeway")])
    assert [(s.agent_no, s.via, s.ended_at) for s in rec.segments] == [
        ("1101", "queue", None),
        ("1102", "threeway", None),
    ]


def test_an_untold_target_skips_legs_that_hung_up_and_else_stays_unknown() -> None:
    gone = [
        *_queued_call(),
        *_legs_of("1101", 1, 2),
        *_legs_of("1102", 2, 8),
        ChannelHungUp(_at(8.5), L1, "9.21", "Local/1102@agents-00000002;1", "Busy"),
        ChannelHungUp(_at(8.5), L1, "9.22", "Local/1102@agents-00000002;2", "Busy"),
        _untold(9),
    ]
    _, rec = _run(gone)
    assert [(t.kind, t.target) for t in rec.transfers] == [("attended", "unknown")]
    assert [s.agent_no for s in rec.segments] == ["1101", "unknown"]


def test_threeway_keeps_the_first_agent_on_the_call() -> None:
    events = [
        *_queued_call(),
        AttendedTransferred(
            _at(9), L1, L1, "PJSIP/trunk-1", "x.9", "PJSIP/1102-00000004", "1102", "a", "Threeway"
        ),
    ]
    _, rec = _run(events)
    assert [(s.agent_no, s.via, s.ended_at) for s in rec.segments] == [
        ("1101", "queue", None),
        ("1102", "threeway", None),
    ]


def test_events_survive_coalescing_and_are_not_repeated() -> None:
    events = [
        *_queued_call(),
        AttendedTransferred(
            _at(9), L1, L1, "PJSIP/trunk-1", None, "PJSIP/1102-00000004", "1102", "a", "Bridge"
        ),
        ChannelHungUp(_at(30), L1, L1, "PJSIP/trunk-1", "Normal Clearing"),
    ]
    tracker = CallTracker()
    snapshots = [r for e in events for r in tracker.apply_event(e)]
    # Step by step (every snapshot persisted) versus only the last one (coalesced).
    stepwise = [
        ev
        for old, new in zip([None, *snapshots], snapshots, strict=False)
        for ev in call_events(old, new)
    ]
    coalesced = call_events(None, snapshots[-1])
    assert (
        [e.type.value for e in stepwise]
        == [e.type.value for e in coalesced]
        == [
            "call.queued",
            "call.ringing",
            "call.answered",
            "call.transferred",
            "call.ended",
        ]
    )
    assert [e.key for e in stepwise] == [e.key for e in coalesced]
    assert call_events(snapshots[-1], snapshots[-1]) == []
    # A tenant learnt late: everything so far is emitted once, when it becomes known.
    anonymous = replace(snapshots[-1], tenant=None)
    assert call_events(None, anonymous) == []
    assert len(call_events(anonymous, snapshots[-1])) == 5
