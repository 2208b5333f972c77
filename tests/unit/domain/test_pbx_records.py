"""Calls rebuilt from the PBX's queue log (ADR 0013): parsed from the real capture's lines,
assembled per call, replayed into the tracker only where a call lacks them."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from ccbridge.domain.calls.events import (
    AgentAnswered,
    BlindTransferred,
    CallerJoinedQueue,
    ChannelCreated,
    ChannelHungUp,
    ChannelVariableSet,
)
from ccbridge.domain.calls.model import CallRecord, CallState
from ccbridge.domain.calls.pbx_records import (
    assemble_calls,
    parse_queue_log_line,
    reconstruct_events,
)
from ccbridge.domain.calls.tracker import CallTracker, missing_events
from ccbridge.domain.journal.derive import call_events

CAPTURE = Path(__file__).parents[2] / "fixtures" / "asterisk-captures" / "logs" / "queue_log"
T0 = 1796271007


def at(offset: int) -> datetime:
    return datetime.fromtimestamp(T0 + offset, UTC)


def lines(*rows: str) -> list[str]:
    return [f"{T0 + int(r.split('|', 1)[0])}|{r.split('|', 1)[1]}" for r in rows]


ANSWERED = lines(
    "0|1796271007.1|t1-sales|NONE|CCBCALL|1796271007.1|t1|4008001234|13800138000|1796271006.5",
    "0|1796271007.1|t1-sales|NONE|ENTERQUEUE||13800138000|1",
    "4|1796271007.1|t1-sales|1001 张伟|CONNECT|4|1796271007.3|2",
    "30|1796271007.1|t1-sales|1001 张伟|COMPLETECALLER|4|26|1",
    "31|1796271007.1|t1-sales|NONE|CCBEND|1796271007.1|t1|4008001234|13800138000|1796271006.5|16",
)
ABANDONED = lines(
    "1|1796271008.2|t2-service|NONE|CCBCALL|1796271008.2|t2|4008005678|13900001111|",
    "1|1796271008.2|t2-service|NONE|ENTERQUEUE||13900001111|1",
    "9|1796271008.2|t2-service|NONE|ABANDON|1|1|8",
)


def parsed(raw: list[str]) -> list:  # type: ignore[type-arg]
    return [e for line in raw if (e := parse_queue_log_line(line)) is not None]


def test_every_line_of_the_real_capture_parses() -> None:
    raw = CAPTURE.read_text(encoding="utf-8").splitlines()
    entries = parsed(raw)
    assert len(entries) == len(raw)
    connect = next(e for e in entries if e.event == "CONNECT")
    assert (connect.callid, connect.queue, connect.agent) == ("1795433037.1", "sales", "Agent 2001")
    assert connect.data == ("0", "1795433037.2", "0")
    member = next(e for e in entries if e.event == "ADDMEMBER")
    assert member.callid == "MANAGER"
    # Calls without ccbridge's CCBCALL/CCBEND line are no ccbridge inbound calls.
    assert assemble_calls(entries) == []


def test_malformed_lines_are_skipped() -> None:
    assert parse_queue_log_line("") is None
    assert parse_queue_log_line("not|a|queue|log") is None
    assert parse_queue_log_line("x|1.1|q|NONE|ENTERQUEUE") is None


def test_an_answered_and_an_abandoned_call_are_assembled() -> None:
    answered, abandoned = assemble_calls(parsed(ANSWERED + ABANDONED))
    assert answered.linkedid == "1796271007.1"
    assert (answered.tenant, answered.callee, answered.caller) == (
        "t1",
        "4008001234",
        "13800138000",
    )
    assert answered.started_at == datetime.fromtimestamp(1796271006.5, UTC)
    assert (answered.queue, answered.queued_at) == ("t1-sales", at(0))
    assert (answered.agent_member, answered.answered_at, answered.ended_at) == (
        "1001 张伟",
        at(4),
        at(31),
    )
    assert answered.outcome == "answered"
    assert abandoned.outcome == "abandoned"
    assert (abandoned.tenant, abandoned.ended_at, abandoned.agent_member) == ("t2", at(9), None)


def test_replayed_records_build_the_call_the_live_stream_builds() -> None:
    call = assemble_calls(parsed(ANSWERED))[0]
    events = reconstruct_events(call, {"1001 张伟": "Local/2001@agents"})
    tracker = CallTracker()
    tracker.apply_all(events)
    rec = tracker.get("1796271007.1")
    assert rec is not None
    assert rec.state is CallState.ENDED
    assert (rec.tenant, rec.caller, rec.callee, rec.skill_group) == (
        "t1",
        "13800138000",
        "4008001234",
        "t1-sales",
    )
    assert (rec.agent_no, rec.agent_interface) == ("1001", "Local/2001@agents")
    assert (rec.queued_at, rec.answered_at, rec.ended_at) == (at(0), at(4), at(31))
    assert rec.end_reason == "Normal Clearing"
    assert [(s.agent_no, s.via, s.ended_at) for s in rec.segments] == [("1001", "queue", at(31))]


def test_an_abandoned_call_is_rebuilt_abandoned() -> None:
    tracker = CallTracker()
    tracker.apply_all(reconstruct_events(assemble_calls(parsed(ABANDONED))[0]))
    rec = tracker.get("1796271008.2")
    assert rec is not None
    assert (rec.state, rec.end_reason, rec.ended_at) == (CallState.ABANDONED, "abandoned", at(9))
    assert rec.agent_no is None


def test_reconstruct_only_adds_what_a_call_lacks_and_marks_it_learned() -> None:
    call = assemble_calls(parsed(ANSWERED))[0]
    events = reconstruct_events(call, {})
    tracker = CallTracker()
    # The live stream saw the start and the answer (with the interface), then AMI was cut.
    live = [e for e in events if not isinstance(e, ChannelHungUp)]
    live = [
        AgentAnswered(e.at, e.linkedid, e.uniqueid, "", e.queue, "Local/2001@agents", e.member_name)
        if isinstance(e, AgentAnswered)
        else e
        for e in live
    ]
    tracker.apply_all(live)
    before = tracker.get(call.linkedid)
    assert before is not None
    learned = at(100)
    changed = tracker.reconstruct(events, learned)
    assert [r.call_id for r in changed] == [call.linkedid]
    rec = changed[0]
    assert (rec.state, rec.ended_at) == (CallState.ENDED, at(31))
    assert len(rec.segments) == 1  # the interface-less answer was not attached twice
    assert rec.learned_at == learned
    # Applying the same records again changes nothing (backfills overlap by design).
    assert tracker.reconstruct(events, at(200)) == []


def test_missing_events_leave_a_final_call_alone() -> None:
    call = assemble_calls(parsed(ANSWERED))[0]
    tracker = CallTracker()
    tracker.apply_all(reconstruct_events(call))
    final = tracker.get(call.linkedid)
    assert missing_events(final, reconstruct_events(call)) == []
    assert [type(e) for e in missing_events(None, reconstruct_events(call))][3] is (
        CallerJoinedQueue
    )


def test_late_events_say_they_are_reconstructed_and_when_they_were_learned() -> None:
    call = assemble_calls(parsed(ANSWERED))[0]
    tracker = CallTracker()
    learned = at(500)
    rec = tracker.reconstruct(reconstruct_events(call), learned)[0]
    events = call_events(None, rec)
    assert [e.type.value for e in events] == ["call.queued", "call.answered", "call.ended"]
    assert [e.occurred_at for e in events] == [at(0), at(4), at(31)]
    assert all(e.data["reconstructed"] is True for e in events)
    assert all(e.data["learned_at"] == learned.isoformat() for e in events)
    # A later live change of the same record is not flagged again.
    assert call_events(rec, rec) == []
    live = CallRecord(call_id="x", started_at=at(0), tenant="t1", queued_at=at(0))
    assert "reconstructed" not in call_events(None, live)[0].data


REQUEUED = lines(
    "0|1796271100.1|t1-sales|NONE|CCBCALL|1796271100.1|t1|4008001234|13800138000|1796271100",
    "0|1796271100.1|t1-sales|NONE|ENTERQUEUE||13800138000|1",
    "3|1796271100.1|t1-sales|1001 张伟|CONNECT|3|1796271100.3|1",
    "20|1796271100.1|t1-sales|1001 张伟|BLINDTRANSFER|t1-support|ccbridge-queue|3|17|1",
    "20|1796271100.1|t1-support|NONE|ENTERQUEUE||13800138000|1",
    "25|1796271100.1|t1-support|1005 李娜|CONNECT|5|1796271100.7|1",
    "60|1796271100.1|t1-support|1005 李娜|COMPLETECALLER|5|35|1",
    "61|1796271100.1|t1-support|NONE|CCBEND|1796271100.1|t1|4008001234|13800138000|1796271100",
)
MEMBERS = {"1001 张伟": "Local/2001@agents", "1005 李娜": "Local/2005@agents"}


def _live_requeued() -> list:  # type: ignore[type-arg]
    """The AMI stream of REQUEUED as the live feed normalises it (whole seconds)."""
    cid = "1796271100.1"
    return [
        ChannelCreated(at(0), cid, cid, "PJSIP/trunk-1", "13800138000", None, "4008001234", None),
        ChannelVariableSet(at(0), cid, cid, "PJSIP/trunk-1", "CCB_TENANT", "t1"),
        ChannelVariableSet(at(0), cid, cid, "PJSIP/trunk-1", "CCB_DID", "4008001234"),
        CallerJoinedQueue(at(0), cid, cid, "PJSIP/trunk-1", "t1-sales", "13800138000", None),
        AgentAnswered(
            at(3), cid, cid, "PJSIP/trunk-1", "t1-sales", MEMBERS["1001 张伟"], "1001 张伟"
        ),
        BlindTransferred(at(20), cid, cid, "PJSIP/trunk-1", "t1-support", "ccbridge-queue", None),
        CallerJoinedQueue(at(20), cid, cid, "PJSIP/trunk-1", "t1-support", "13800138000", None),
        AgentAnswered(
            at(25), cid, cid, "PJSIP/trunk-1", "t1-support", MEMBERS["1005 李娜"], "1005 李娜"
        ),
        ChannelHungUp(at(61), cid, cid, "PJSIP/trunk-1", "Normal Clearing"),
    ]


def _story(rec: CallRecord | None) -> tuple:  # type: ignore[type-arg]
    assert rec is not None
    segments = [
        (s.seq, s.agent_no, s.agent_interface, s.skill_group, s.via, s.started_at, s.ended_at)
        for s in rec.segments
    ]
    transfers = [(t.kind, t.at, t.from_agent_no, t.target, t.from_group) for t in rec.transfers]
    return (rec.state, rec.skill_group, rec.agent_no, rec.answered_at, segments, transfers)


def test_a_requeued_call_is_rebuilt_with_every_segment_as_the_live_tracker_builds_it() -> None:
    call = assemble_calls(parsed(REQUEUED))[0]
    rebuilt = CallTracker()
    rebuilt.apply_all(reconstruct_events(call, MEMBERS))
    live = CallTracker()
    live.apply_all(_live_requeued())
    story = _story(rebuilt.get(call.linkedid))
    assert story == _story(live.get(call.linkedid))
    segments = story[4]
    assert [(s[1], s[3], s[4]) for s in segments] == [
        ("1001", "t1-sales", "queue"),
        ("1005", "t1-support", "blind_transfer"),
    ]
    assert segments[0][6] == at(25)  # the first leg ends when the second agent answers
    assert story[5] == [("blind", at(20), "1001", "t1-support", "t1-sales")]


def test_a_transfer_in_the_gap_adds_the_later_segments_without_doubling_the_first() -> None:
    call = assemble_calls(parsed(REQUEUED))[0]
    tracker = CallTracker()
    tracker.apply_all(_live_requeued()[:5])  # live up to the first answer, then AMI is cut
    rec = tracker.reconstruct(reconstruct_events(call, {}), at(100))[0]
    assert [(s.agent_no, s.skill_group, s.via) for s in rec.segments] == [
        ("1001", "t1-sales", "queue"),
        ("1005", "t1-support", "blind_transfer"),
    ]
    assert rec.segments[0].agent_interface == MEMBERS["1001 张伟"]  # the live leg is kept
    assert [(t.kind, t.target) for t in rec.transfers] == [("blind", "t1-support")]
    assert rec.state is CallState.ENDED
    assert tracker.reconstruct(reconstruct_events(call, {}), at(200)) == []


STICKY = lines(
    "0|1796271200.1|t1-sales|NONE|CCBCALL|1796271200.1|t1|4008001234|13800138000|1796271200",
    "40|1796271200.1|t1-sales|NONE|CCBSTICKY|1796271200.1|t1|4008001234|13800138000|"
    f"1796271200|1101|PJSIP/1101|{T0 + 5}",
    "40|1796271200.1|t1-sales|NONE|CCBEND|1796271200.1|t1|4008001234|13800138000|1796271200|16",
)


def test_the_owners_answer_on_the_sticky_ring_is_rebuilt_from_its_own_line() -> None:
    (call,) = assemble_calls(parsed(STICKY))
    assert (call.queue, call.agent_member, call.answered_at, call.outcome) == (
        "t1-sales",
        "1101",
        at(5),
        "answered",
    )
    tracker = CallTracker()
    rec = tracker.reconstruct(reconstruct_events(call), at(100))[0]
    assert (rec.state, rec.agent_no, rec.skill_group, rec.answered_at) == (
        CallState.ENDED,
        "1101",
        "t1-sales",
        at(5),
    )
    assert [(s.agent_no, s.agent_interface, s.via, s.ended_at) for s in rec.segments] == [
        ("1101", "PJSIP/1101", "sticky", at(40))
    ]
    # A line without agent or interface credits nobody.
    broken = [STICKY[0], STICKY[1].replace("|1101|PJSIP/1101|", "|||"), STICKY[2]]
    assert assemble_calls(parsed(broken))[0].answered_at is None
