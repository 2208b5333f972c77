"""A scripted morning of calls and agent states, times in Asia/Shanghai (UTC+8).

Calls (skill group ``sales`` unless said), with T = 30 s, short abandon 5 s, billable 15 s:

- C1 queued 09:00:00, A1 answers 09:00:10 (wait 10), talks to 09:02:10 (120 s); ACW 30 s.
- C2 queued 09:05:00, A2 answers 09:05:40 (wait 40 > T), 60 s, blind transfer to A1 who
  talks 09:06:40-09:07:00 (20 s); talk 80 s, 1 transfer; A1's ACW 20 s.
- C3 queued 09:10:00, caller hangs up 09:10:03 (3 s < 5 s: short abandon).
- C4 queued 09:12:00, caller hangs up 09:13:00 (60 s: abandon).
- C5 queued 09:29:50, A1 answers 09:29:55 (wait 5), talks to 09:30:05 (10 s, over the
  09:30 boundary); ACW 10 s.
- C6 (``support``) queued 09:40:00, A2 answers 09:40:20 (wait 20), talks 40 s.
- C7 outbound: A2 dials at 09:50:00, answered 09:50:10, ends 09:51:00 (50 s).

Agent states: A1 ready from 08:55, on the calls above, signs out 09:45. A2 ready from 09:00,
on C2, not ready (meeting) 09:06:40-09:20:00, on break 09:20:00-09:40:20 (crossing 09:30),
on C6, ready, on C7, ready until the report's end 10:00 (open interval).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from ccbridge.domain.agents.state import AgentState
from ccbridge.domain.calls.model import CallRecord, CallSegment, CallState, CallTransfer
from ccbridge.domain.reports.model import StateSpan

CST = timezone(timedelta(hours=8))
DAY = (2026, 3, 2)


def at(hhmmss: str) -> datetime:
    """A Shanghai wall-clock time on the scripted day, as an aware UTC instant."""
    h, m, s = (int(x) for x in hhmmss.split(":"))
    return datetime(*DAY, h, m, s, tzinfo=CST).astimezone(UTC)


def seg(seq: int, agent: str, start: str, end: str, via: str = "queue") -> CallSegment:
    return CallSegment(
        seq, agent, f"PJSIP/{agent}", "sales", "13800138000", "4001234567", via, at(start), at(end)
    )


def inbound(
    call_id: str,
    queued: str,
    answered: str | None,
    ended: str,
    segments: tuple[CallSegment, ...] = (),
    *,
    caller: str = "13800138000",
    group: str = "sales",
    transfers: tuple[CallTransfer, ...] = (),
) -> CallRecord:
    return CallRecord(
        call_id=call_id,
        started_at=at(queued) - timedelta(seconds=10),
        state=CallState.ENDED if answered else CallState.ABANDONED,
        tenant="acme",
        caller=caller,
        callee="4001234567",
        skill_group=group,
        agent_no=segments[-1].agent_no if segments else None,
        queued_at=at(queued),
        answered_at=at(answered) if answered else None,
        ended_at=at(ended),
        segments=segments,
        transfers=transfers,
    )


CALLS = [
    inbound("C1", "09:00:00", "09:00:10", "09:02:10", (seg(1, "A1", "09:00:10", "09:02:10"),)),
    inbound(
        "C2",
        "09:05:00",
        "09:05:40",
        "09:07:00",
        (
            seg(1, "A2", "09:05:40", "09:06:40"),
            seg(2, "A1", "09:06:40", "09:07:00", "blind_transfer"),
        ),
        caller="01058001234",
        transfers=(CallTransfer("blind", at("09:06:35"), "A2", "A1"),),
    ),
    inbound("C3", "09:10:00", None, "09:10:03", caller="18912345678"),
    inbound("C4", "09:12:00", None, "09:13:00", caller="13800138000"),
    inbound("C5", "09:29:50", "09:29:55", "09:30:05", (seg(1, "A1", "09:29:55", "09:30:05"),)),
    inbound(
        "C6",
        "09:40:00",
        "09:40:20",
        "09:41:00",
        (seg(1, "A2", "09:40:20", "09:41:00"),),
        group="support",
        caller="18912345678",
    ),
    CallRecord(
        call_id="C7",
        started_at=at("09:50:00"),
        state=CallState.ENDED,
        tenant="acme",
        caller="1002",
        callee="13900001111",
        agent_no="A2",
        answered_at=at("09:50:10"),
        ended_at=at("09:51:00"),
    ),
]


def span(agent: str, state: AgentState, start: str, end: str | None, reason: str = "") -> StateSpan:
    return StateSpan(agent, state, reason, at(start), at(end) if end else None)


R, NR, BR, OC, ACW = (
    AgentState.READY,
    AgentState.NOT_READY,
    AgentState.BREAK,
    AgentState.ON_CALL,
    AgentState.AFTER_CALL_WORK,
)

SPANS = [
    span("A1", R, "08:55:00", "09:00:10"),
    span("A1", OC, "09:00:10", "09:02:10"),
    span("A1", ACW, "09:02:10", "09:02:40"),
    span("A1", R, "09:02:40", "09:06:40"),
    span("A1", OC, "09:06:40", "09:07:00"),
    span("A1", ACW, "09:07:00", "09:07:20"),
    span("A1", R, "09:07:20", "09:29:55"),
    span("A1", OC, "09:29:55", "09:30:05"),
    span("A1", ACW, "09:30:05", "09:30:15"),
    span("A1", R, "09:30:15", "09:45:00"),
    span("A1", AgentState.SIGNED_OUT, "09:45:00", None),
    span("A2", R, "09:00:00", "09:05:40"),
    span("A2", OC, "09:05:40", "09:06:40"),
    span("A2", NR, "09:06:40", "09:20:00", "meeting"),
    span("A2", BR, "09:20:00", "09:40:20"),
    span("A2", OC, "09:40:20", "09:41:00"),
    span("A2", R, "09:41:00", "09:50:00"),
    span("A2", OC, "09:50:00", "09:51:00"),
    span("A2", R, "09:51:00", None),
]

UNTIL = at("10:00:00")
