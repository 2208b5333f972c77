"""Issue 15: a call the owner agent answers on the sticky ring (``Dial`` before ``Queue``, no
``AgentConnect``) is credited to that agent, from the variables the dialplan hands the leg."""

from __future__ import annotations

from datetime import UTC, datetime

from ccbridge.asterisk.ami.codec import parse_frame
from ccbridge.asterisk.ami.normalize import normalize
from ccbridge.domain.calls.events import StickyAgentAnswered, TelephonyEvent
from ccbridge.domain.calls.model import CallState
from ccbridge.domain.calls.tracker import CallTracker
from ccbridge.domain.journal.derive import call_events
from ccbridge.domain.journal.types import EventType

NOW = datetime(2026, 12, 3, tzinfo=UTC)
CALL = "1796300000.10"
STICKY = ("1101", "PJSIP/1101", "t1-sales")


def _frame(event: str, channel: str, uniqueid: str, state: str, sticky: tuple[str, ...]) -> bytes:
    agent, interface, queue = sticky or ("", "", "")
    return (
        f"Event: {event}\r\nPrivilege: call,all\r\nTimestamp: 1796300012.500000\r\n"
        f"Channel: {channel}\r\nChannelState: 6\r\nChannelStateDesc: {state}\r\n"
        f"CallerIDNum: 13800138000\r\nUniqueid: {uniqueid}\r\nLinkedid: {CALL}\r\n"
        f"ChanVariable: CCB_TENANT=t1\r\nChanVariable: CCB_DID=4008001234\r\n"
        f"ChanVariable: CCB_QUEUE=\r\nChanVariable: CCB_STICKY_AGENT={agent}\r\n"
        f"ChanVariable: CCB_STICKY_INTERFACE={interface}\r\n"
        f"ChanVariable: CCB_STICKY_QUEUE={queue}"
    ).encode()


def _events(frame: bytes) -> list[TelephonyEvent]:
    return normalize(parse_frame(frame), lambda: NOW)


def _sticky(events: list[TelephonyEvent]) -> list[StickyAgentAnswered]:
    return [e for e in events if isinstance(e, StickyAgentAnswered)]


def test_the_owners_leg_going_up_is_a_sticky_answer() -> None:
    got = _sticky(_events(_frame("Newstate", "PJSIP/1101-0000000b", "1796300001.11", "Up", STICKY)))
    assert [(e.agent_no, e.interface, e.queue, e.linkedid) for e in got] == [
        ("1101", "PJSIP/1101", "t1-sales", CALL)
    ]
    assert got[0].at == datetime.fromtimestamp(1796300012.5, UTC)


def test_other_legs_and_states_are_no_sticky_answer() -> None:
    # A queue member's leg inherits the variables too, but is another interface.
    member = _frame("Newstate", "Local/2001@agents-00000001;1", "1796300001.12", "Up", STICKY)
    ringing = _frame("Newstate", "PJSIP/1101-0000000b", "1796300001.11", "Ringing", STICKY)
    caller = _frame("Newstate", "PJSIP/trunk-00000001", CALL, "Up", STICKY)
    cleared = _frame("Newstate", "PJSIP/1101-0000000c", "1796300001.13", "Up", ())
    hangup = _frame("Hangup", "PJSIP/1101-0000000b", "1796300001.11", "Up", STICKY)
    for frame in (member, ringing, caller, cleared, hangup):
        assert _sticky(_events(frame)) == []


def test_a_resync_of_the_live_owner_leg_is_a_sticky_answer() -> None:
    frame = _frame("CoreShowChannel", "PJSIP/1101-0000000b", "1796300001.11", "Up", STICKY)
    assert [e.agent_no for e in _sticky(_events(frame))] == ["1101"]


def test_the_tracker_opens_the_owners_segment_and_the_call_is_answered() -> None:
    tracker = CallTracker()
    tracker.apply_all(
        [
            *_events(_frame("Newchannel", "PJSIP/trunk-00000001", CALL, "Ring", ())),
            *_events(_frame("Newstate", "PJSIP/1101-0000000b", "1796300001.11", "Up", STICKY)),
        ]
    )
    rec = tracker.get(CALL)
    assert rec is not None
    assert rec.state is CallState.CONNECTED
    assert (rec.agent_no, rec.agent_interface, rec.skill_group) == (
        "1101",
        "PJSIP/1101",
        "t1-sales",
    )
    assert rec.answered_at == datetime.fromtimestamp(1796300012.5, UTC)
    assert [(s.agent_no, s.skill_group, s.via) for s in rec.segments] == [
        ("1101", "t1-sales", "sticky")
    ]
    answered = [e for e in call_events(None, rec) if e.type is EventType.CALL_ANSWERED]
    assert [e.data["params"]["agent_no"] for e in answered] == ["1101"]
    # The same leg seen again (a resync overlapping the live stream) adds nothing.
    again = _events(_frame("CoreShowChannel", "PJSIP/1101-0000000b", "1796300001.11", "Up", STICKY))
    assert tracker.reconstruct(again, NOW) == []


def _real(event: str, channel: str, uniqueid: str, state: str, tenant: str, sticky: bool) -> bytes:
    """A frame as a real PBX sends it: the caller's channelvars (no VarSet events), the
    owner's leg with only what it inherits (``__CCB_STICKY_*``), never ``CCB_TENANT``."""
    agent, interface, queue = STICKY if sticky else ("", "", "")
    return (
        f"Event: {event}\r\nTimestamp: 1796300012.500000\r\n"
        f"Channel: {channel}\r\nChannelState: 6\r\nChannelStateDesc: {state}\r\n"
        f"Uniqueid: {uniqueid}\r\nLinkedid: {CALL}\r\n"
        f"ChanVariable: CCB_TENANT={tenant}\r\nChanVariable: CCB_STICKY_AGENT={agent}\r\n"
        f"ChanVariable: CCB_STICKY_INTERFACE={interface}\r\n"
        f"ChanVariable: CCB_STICKY_QUEUE={queue}"
    ).encode()


def test_the_sticky_callers_tenant_is_known_when_the_owner_answers() -> None:
    """The caller's ``Newstate`` Up comes at ``Answer()``, before FastAGI tags it, and no queue
    event follows on a sticky ring: its ``DialBegin`` is what carries the tenant."""
    tracker = CallTracker()
    trunk = "PJSIP/trunk-00000001"
    tracker.apply_all(
        [
            *_events(_real("Newchannel", trunk, CALL, "Ring", "", False)),
            *_events(_real("Newstate", trunk, CALL, "Up", "", False)),
            *_events(_real("DialBegin", trunk, CALL, "Up", "t1", True)),
            *_events(_real("Newstate", "PJSIP/1101-0000000b", "1796300001.11", "Up", "", True)),
        ]
    )
    rec = tracker.get(CALL)
    assert rec is not None
    assert (rec.state, rec.tenant, rec.agent_no) == (CallState.CONNECTED, "t1", "1101")
