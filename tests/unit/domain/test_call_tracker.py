"""The call tracker, fed with real Asterisk 22 traffic and with hostile orderings."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from ccbridge.asterisk.ami.normalize import normalize
from ccbridge.domain.calls.events import CallerAbandoned, ChannelHungUp, TelephonyEvent
from ccbridge.domain.calls.model import CallControl, CallRecord, CallState
from ccbridge.domain.calls.tracker import CallTracker, agent_no_from_member
from ccbridge.domain.journal.derive import call_events
from ccbridge.domain.journal.types import EventType
from tests.support.captures import capture_messages

NOW = datetime(2026, 11, 23, tzinfo=UTC)


def _events(scenario: str) -> list[TelephonyEvent]:
    out: list[TelephonyEvent] = []
    for msg in capture_messages(scenario):
        out.extend(normalize(msg, lambda: NOW))
    return out


def _run(events: list[TelephonyEvent]) -> dict[str, CallRecord]:
    tracker = CallTracker()
    tracker.apply_all(events)
    return {r.call_id: r for r in tracker.all_calls()}


def _essence(rec: CallRecord) -> CallRecord:
    """A record without the fields that legitimately depend on arrival order."""
    return replace(rec, version=0, legs=tuple(sorted(rec.legs)))


def test_answered_queue_call_has_the_four_variables() -> None:
    calls = _run(_events("queue-call-and-sip"))
    call = calls["1795433123.29"]
    assert call.state is CallState.ENDED
    assert call.caller == "5551234"
    assert call.caller_name == "Smoke Caller"
    assert call.skill_group == "sales"
    assert call.agent_no == "2001"  # member "Agent 2001" is not ccbridge-named: from interface
    assert call.agent_interface == "Local/2001@agents"
    assert call.answered_at == datetime.fromtimestamp(1795433123.466012, UTC)
    assert call.ended_at is not None
    assert call.ended_at > call.answered_at
    assert len(call.legs) >= 3


def test_abandoned_call_is_abandoned_with_hold_start() -> None:
    calls = _run(_events("queue-call-and-sip"))
    call = calls["1795433144.40"]
    assert call.state is CallState.ABANDONED
    assert call.caller == "5550018"
    assert call.skill_group == "sales"
    assert call.agent_no is None
    assert call.ended_at is not None


def test_an_abandoned_call_ends_when_the_caller_gives_up_whatever_the_batching() -> None:
    """QueueCallerAbandon may come before the caller's Hangup (the fake PBX sends it so). A
    snapshot written between the two must already carry ``ended_at`` (the abandon moment), or
    its call.abandoned event takes the call's start time, and a differently batched run (a
    database outage) records another time for the same event."""
    call_id = "1795433144.40"
    events = _events("queue-call-and-sip")
    abandon = next(e for e in events if isinstance(e, CallerAbandoned) and e.linkedid == call_id)
    events.remove(abandon)
    first_hangup = next(
        i for i, e in enumerate(events) if isinstance(e, ChannelHungUp) and e.linkedid == call_id
    )
    events.insert(first_hangup, abandon)
    tracker = CallTracker()
    tracker.apply_all(events[: first_hangup + 1])
    between = {r.call_id: r for r in tracker.all_calls()}[call_id]
    assert (between.state, between.ended_at) == (CallState.ABANDONED, abandon.at)
    tracker.apply_all(events[first_hangup + 1 :])
    final = {r.call_id: r for r in tracker.all_calls()}[call_id]
    assert (final.state, final.ended_at) == (CallState.ABANDONED, abandon.at)
    for snapshot in (between, final):
        derived = call_events(None, replace(snapshot, tenant="t1"))
        [event] = [e for e in derived if e.type is EventType.CALL_ABANDONED]
        assert event.occurred_at == abandon.at


def test_chinese_caller_and_tenant_variable_from_call_centre_capture() -> None:
    calls = _run(_events("call-centre-scenarios"))
    call = calls["1795433102.17"]
    assert call.caller == "13800138000"
    assert call.caller_name == "张三"
    assert call.skill_group == "sales"
    assert call.agent_no == "T001"  # member "T001 Zhang Wei": ccbridge's "<工号> <name>" naming
    assert call.tenant == "t1"  # Originate Variable CCB_TENANT=t1, seen as VarSet
    assert call.callee == "4008001234"  # CCB_DID beats the Exten "sales"


def test_every_queued_call_in_the_capture_is_final_at_the_end() -> None:
    queued = [c for c in _run(_events("queue-call-and-sip")).values() if c.skill_group]
    assert len(queued) >= 3
    assert all(c.state.is_final for c in queued), [c for c in queued if not c.state.is_final]


def test_duplicated_frames_give_the_same_result() -> None:
    events = _events("queue-call-and-sip")
    doubled = [e for e in events for _ in range(2)]
    clean = {k: _essence(v) for k, v in _run(events).items()}
    assert {k: _essence(v) for k, v in _run(doubled).items()} == clean


def test_hangup_first_then_the_rest() -> None:
    events = [e for e in _events("queue-call-and-sip") if e.linkedid == "1795433123.29"]
    hangups = [e for e in events if isinstance(e, ChannelHungUp)]
    others = [e for e in events if not isinstance(e, ChannelHungUp)]
    clean = _essence(_run(events)["1795433123.29"])
    assert _essence(_run(hangups + others)["1795433123.29"]) == clean


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_any_order_of_a_calls_events_gives_the_same_call(seed: int) -> None:
    for call_id in ("1795433123.29", "1795433144.40"):
        events = [e for e in _events("queue-call-and-sip") if e.linkedid == call_id]
        clean = _essence(_run(events)[call_id])
        shuffled = events[:]
        random.Random(seed).shuffle(shuffled)
        got = _essence(_run(shuffled)[call_id])
        assert got.state == clean.state
        assert (got.caller, got.callee, got.skill_group, got.agent_no) == (
            clean.caller,
            clean.callee,
            clean.skill_group,
            clean.agent_no,
        )
        assert got.started_at == clean.started_at


def test_reconcile_closes_vanished_calls_exactly_once() -> None:
    events = [e for e in _events("queue-call-and-sip") if e.linkedid == "1795433123.29"]
    open_events = [e for e in events if not isinstance(e, ChannelHungUp)]
    tracker = CallTracker()
    tracker.apply_all(open_events)
    assert [c.call_id for c in tracker.open_calls()] == ["1795433123.29"]
    closed = tracker.reconcile(set(), NOW)
    assert [(c.call_id, c.end_reason) for c in closed] == [("1795433123.29", "reconciled")]
    assert tracker.reconcile(set(), NOW) == []
    # A late Hangup replayed after the resync does not reopen or re-close it.
    for e in events:
        tracker.apply(e)
    rec = tracker.get("1795433123.29")
    assert rec is not None
    assert rec.state is CallState.ENDED
    assert rec.end_reason == "reconciled"


def test_reconcile_keeps_live_calls() -> None:
    events = [e for e in _events("queue-call-and-sip") if e.linkedid == "1795433123.29"]
    tracker = CallTracker()
    tracker.apply_all([e for e in events if not isinstance(e, ChannelHungUp)])
    assert tracker.reconcile({"1795433123.29"}, NOW) == []


def test_unchanged_event_reports_no_change() -> None:
    events = _events("queue-call-and-sip")
    tracker = CallTracker()
    tracker.apply_all(events)
    assert all(tracker.apply(e) is None for e in events)


def test_agent_number_convention() -> None:
    assert agent_no_from_member("T001 Zhang Wei", "Local/2001@agents") == "T001"
    assert agent_no_from_member("1001 张伟", "PJSIP/1001") == "1001"
    assert agent_no_from_member("Agent 2001", "Local/2001@agents") == "2001"
    assert agent_no_from_member(None, "PJSIP/8001") == "8001"
    assert agent_no_from_member(None, "weird") == "weird"


def test_records_given_out_never_change_afterwards() -> None:
    """The tracker reduces into a mutable working copy; what it hands out is a snapshot."""
    tracker = CallTracker()
    given: list[tuple[CallRecord, CallRecord]] = []
    for event in _events("queue-call-and-sip"):
        for rec in tracker.apply_event(event):
            given.append((rec, replace(rec)))
    assert len(given) > 30
    assert all(rec == copy for rec, copy in given)
    versions: dict[str, int] = {}
    for rec, _ in given:  # each change is a new version, one at a time
        assert rec.version == versions.get(rec.call_id, 0) + 1
        versions[rec.call_id] = rec.version


def test_a_step_noted_between_events_is_kept_by_the_next_event() -> None:
    tracker = CallTracker()
    events = _events("queue-call-and-sip")
    call_id = "1795433123.29"
    mine = [e for e in events if e.linkedid == call_id]
    hangups = [i for i, e in enumerate(mine) if isinstance(e, ChannelHungUp)]
    before, after = mine[: hangups[0]], mine[hangups[0] :]
    tracker.apply_all(before)
    step = CallControl("held", NOW, "2001")
    noted = tracker.note(call_id, step)
    assert noted is not None
    assert noted.controls == (step,)
    tracker.apply_all(after)
    final = tracker.get(call_id)
    assert final is not None
    assert final.controls == (step,)
    assert final.state is CallState.ENDED
    assert final.version > noted.version
