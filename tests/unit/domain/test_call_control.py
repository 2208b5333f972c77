"""Call control in the domain: seat functions per request, control steps on the call record,
transfer intents, agent-dialled calls, and the journal events derived from them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from ccbridge.db.repositories.call_params import detail_to_json, with_detail
from ccbridge.domain.calls.control import (
    ControlKind,
    Target,
    TargetKind,
    check_flow_node,
    required_capability,
)
from ccbridge.domain.calls.events import (
    AgentAnswered,
    BlindTransferred,
    CallerJoinedQueue,
    ChannelCreated,
    ChannelHungUp,
    ChannelStateChanged,
    ChannelVariableSet,
)
from ccbridge.domain.calls.model import CallControl, CallOffer, CallRecord, CallState, CallTransfer
from ccbridge.domain.calls.tracker import CallTracker
from ccbridge.domain.journal.derive import call_events, call_params
from ccbridge.domain.leases.model import CAPABILITIES, Capability, SeatKind

T0 = datetime(2026, 12, 3, 2, 0, tzinfo=UTC)
L1 = "1795433102.17"
TRUNK = "PJSIP/trunk-1"


def _at(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def _connected() -> CallTracker:
    tracker = CallTracker()
    tracker.apply_all(
        [
            ChannelCreated(_at(0), L1, L1, TRUNK, "13800138000", None, "4008001234", "in"),
            ChannelVariableSet(_at(0.1), L1, L1, TRUNK, "CCB_TENANT", "t1"),
            CallerJoinedQueue(_at(1), L1, L1, TRUNK, "t1-sales", "13800138000", None),
            AgentAnswered(_at(3), L1, L1, TRUNK, "t1-sales", "Local/1101@agents", "1101 A"),
        ]
    )
    return tracker


FOUR = {
    "agent_no": "1101",
    "skill_group": "t1-sales",
    "caller": "+8613800138000",
    "callee": "+864008001234",
    "caller_original": "13800138000",
    "callee_original": "4008001234",
}


@pytest.mark.parametrize(
    ("kind", "target", "capability"),
    [
        (ControlKind.HOLD, None, Capability.HOLD),
        (ControlKind.BLIND_TRANSFER, Target(TargetKind.AGENT, "1"), Capability.INTERNAL_TRANSFER),
        (ControlKind.BLIND_TRANSFER, Target(TargetKind.GROUP, "g"), Capability.INTERNAL_TRANSFER),
        (ControlKind.ATTENDED_TRANSFER, Target(TargetKind.NUMBER, "1"), Capability.TRANSFER_OUT),
        (ControlKind.CONFERENCE, Target(TargetKind.AGENT, "1"), Capability.THREE_WAY_CALL),
        (ControlKind.RETURN_TO_IVR, None, Capability.HAND_BACK_TO_IVR),
        (ControlKind.OUTBOUND_CALL, None, Capability.OUTBOUND_CALL),
        (ControlKind.INTERNAL_CALL, None, Capability.INTERNAL_CALL),
    ],
)
def test_each_request_needs_its_seat_function(
    kind: ControlKind, target: Target | None, capability: Capability
) -> None:
    assert required_capability(kind, target) is capability


def test_an_inbound_seat_lacks_exactly_outbound_transfer_out_and_three_way() -> None:
    inbound = CAPABILITIES[SeatKind.INBOUND]
    refused = {
        k
        for k in ControlKind
        if required_capability(k, Target(TargetKind.NUMBER, "1")) not in inbound
    }
    assert refused == {
        ControlKind.BLIND_TRANSFER,  # to a number
        ControlKind.ATTENDED_TRANSFER,  # to a number
        ControlKind.CONFERENCE,
        ControlKind.LEAVE_CONFERENCE,
        ControlKind.OUTBOUND_CALL,
    }


def test_flow_node_ids_are_checked() -> None:
    assert check_flow_node("survey_1.score-2") == "survey_1.score-2"
    for bad in ("", "a b", "x\r\n", "-start", "a" * 65):
        with pytest.raises(ValueError, match="flow node"):
            check_flow_node(bad)


def test_hold_and_resume_keep_the_four_variables_and_emit_events_once() -> None:
    tracker = _connected()
    before = tracker.get(L1)
    held = tracker.note(L1, CallControl("held", _at(10), "1101"))
    assert held is not None
    assert held.held
    assert held.version == before.version + 1  # type: ignore[union-attr]
    assert tracker.note(L1, CallControl("held", _at(10), "1101")) is None  # the same step again
    resumed = tracker.note(L1, CallControl("resumed", _at(20), "1101"))
    assert resumed is not None
    assert not resumed.held
    assert call_params(resumed) == FOUR
    events = call_events(held, resumed)
    assert [(e.type.value, e.key, e.data["params"]) for e in events] == [
        ("call.resumed", f"call:{L1}:control:2", FOUR)
    ]
    assert [e.type.value for e in call_events(None, resumed)][-2:] == ["call.held", "call.resumed"]
    assert call_events(resumed, resumed) == []


def test_steps_that_are_not_events_stay_on_the_record() -> None:
    tracker = _connected()
    rec = tracker.note(L1, CallControl("muted", _at(5), "1101"))
    assert rec is not None
    assert [c.kind for c in rec.controls] == ["muted"]
    assert call_events(tracker.get(L1), rec) == []
    assert "call.held" not in [e.type.value for e in call_events(None, rec)]


def test_a_transfer_intent_names_the_agent_the_pbx_event_does_not() -> None:
    tracker = _connected()
    intent = CallTransfer("blind", _at(9), "1101", "1103", to_agent_no="A-7", from_group="t1-sales")
    assert tracker.expect_transfer(L1, intent) is not None
    tracker.apply_all(
        [
            BlindTransferred(_at(10), L1, L1, TRUNK, "1103", "agents", "Local/1101@agents-1;1"),
            ChannelStateChanged(
                _at(12), L1, "9.1", "Local/1103@agents-00000009;1", "Up", None, None
            ),
        ]
    )
    rec = tracker.get(L1)
    assert rec is not None
    (done,) = rec.transfers
    assert (done.to_agent_no, done.from_group, done.from_agent_no) == ("A-7", "t1-sales", "1101")
    assert rec.transfer_intent is None
    assert rec.current_agent_no == "A-7"  # the 工号, not the phone's extension
    (event,) = [e for e in call_events(None, rec) if e.type.value == "call.transferred"]
    assert event.data["transfer"]["to_agent_no"] == "A-7"
    assert event.data["params"]["agent_no"] == "A-7"


def test_an_intent_for_another_target_is_not_used() -> None:
    tracker = _connected()
    tracker.expect_transfer(L1, CallTransfer("blind", _at(9), "1101", "t1-support", to_group="s"))
    tracker.apply_event(BlindTransferred(_at(10), L1, L1, TRUNK, "1103", "agents", None))
    rec = tracker.get(L1)
    assert rec is not None
    assert rec.transfers[0].to_group is None
    assert rec.transfer_intent is not None


def _outbound() -> CallRecord:
    return CallRecord(
        call_id="ccb-1",
        started_at=_at(0),
        state=CallState.AGENT_RINGING,
        tenant="t1",
        caller="+862088880000",
        callee="+8613900139000",
        skill_group="sales",
        agent_no="1000",
        agent_interface="Local/1000@agents",
        direction="outbound",
        offers=(CallOffer("1000", "Local/1000@agents", "sales", _at(0)),),
    )


def test_an_agent_dialled_call_is_answered_by_the_far_end_not_the_agents_phone() -> None:
    tracker = CallTracker()
    tracker.start_call(_outbound())
    assert tracker.start_call(replace(_outbound(), callee="x")).callee == "+8613900139000"
    agent_one, agent_two = "Local/1000@agents-00000001;1", "Local/1000@agents-00000001;2"
    tracker.apply_all(
        [
            ChannelCreated(_at(0.1), "ccb-1", "ccb-1", agent_one, "+862088880000", None, "s", ""),
            ChannelStateChanged(_at(2), "ccb-1", "u2", agent_two, "Up", None, None),
            ChannelStateChanged(_at(2.1), "ccb-1", "ccb-1", agent_one, "Up", None, None),
        ]
    )
    ringing = tracker.get("ccb-1")
    assert ringing is not None
    assert ringing.answered_at is None  # the agent answered its own phone: still ringing out
    tracker.apply_event(
        ChannelStateChanged(_at(5), "ccb-1", "u3", "PJSIP/trunk-00000009", "Up", None, None)
    )
    rec = tracker.get("ccb-1")
    assert rec is not None
    assert (rec.state, rec.answered_at) == (CallState.CONNECTED, _at(5))
    assert [(s.agent_no, s.via) for s in rec.segments] == [("1000", "outbound")]
    tracker.apply_event(ChannelHungUp(_at(30), "ccb-1", "ccb-1", agent_one, "16"))
    done = tracker.get("ccb-1")
    assert done is not None
    params = call_params(done)
    assert (params["agent_no"], params["skill_group"], params["caller"], params["callee"]) == (
        "1000",
        "sales",
        "+862088880000",
        "+8613900139000",
    )
    assert [e.type.value for e in call_events(None, done)] == [
        "call.ringing",
        "call.answered",
        "call.ended",
    ]


def test_control_steps_intent_and_direction_survive_the_detail_json() -> None:
    tracker = _connected()
    tracker.note(L1, CallControl("conferenced", _at(4), "1101", (("room", "1795"),)))
    tracker.expect_transfer(L1, CallTransfer("attended", _at(5), "1101", "1103", to_agent_no="7"))
    rec = tracker.get(L1)
    assert rec is not None
    rec = replace(rec, direction="internal")
    bare = replace(rec, controls=(), transfer_intent=None, direction="inbound", offers=())
    back = with_detail(bare, detail_to_json(rec))
    assert back.controls == rec.controls
    assert back.transfer_intent == rec.transfer_intent
    assert back.direction == "internal"
