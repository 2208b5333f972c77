"""Calls as the PBX's durable records tell them (Asterisk's queue log), and the telephony events
that rebuild them, so a call whose AMI events were lost ends up as the live stream makes it.

The queue log is ``time|callid|queue|agent|event|data…`` (one line per fact, written whether or
not anyone listens). ccbridge's dialplan adds two lines per inbound call with ``QueueLog()``:
``CCBCALL`` before the queue and ``CCBEND`` in the ``h`` extension, both with
``linkedid|tenant|did|caller|start`` (ADR 0013), so tenant, callee and Linkedid are in the
record too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from ccbridge.domain.calls.events import (
    AgentAnswered,
    BlindTransferred,
    CallerAbandoned,
    CallerJoinedQueue,
    ChannelCreated,
    ChannelHungUp,
    ChannelVariableSet,
    StickyAgentAnswered,
    TelephonyEvent,
)
from ccbridge.domain.calls.tracker import DID_VAR, TENANT_VAR

CALL_LINE = "CCBCALL"
END_LINE = "CCBEND"
STICKY_LINE = "CCBSTICKY"
"""The owner agent answered the sticky ring: ``…|start|agent|interface|answer epoch``."""
HANGUP_CAUSE = "Normal Clearing"
"""``Cause-txt`` of the hang-up the live stream reports for a call that ends normally."""
_NONE = "NONE"
_ANSWER_LINES = frozenset({"CONNECT"})
_ABANDON_LINES = frozenset({"ABANDON"})
_BLIND_LINE = "BLINDTRANSFER"
"""app_queue's line when the agent blind-transfers: ``extension|context|holdtime|calltime|…``."""
_END_LINES = frozenset({"COMPLETECALLER", "COMPLETEAGENT", "EXITWITHTIMEOUT", "EXITEMPTY"})


@dataclass(frozen=True, slots=True)
class QueueLogEntry:
    """One queue-log line."""

    at: datetime
    callid: str
    queue: str | None
    agent: str | None
    event: str
    data: tuple[str, ...]


def _named(value: str) -> str | None:
    return None if value in ("", _NONE) else value


def parse_queue_log_line(line: str) -> QueueLogEntry | None:
    """Parse one line; anything that is not ``epoch|callid|queue|agent|event…`` is ``None``."""
    parts = line.rstrip("\r\n").split("|")
    if len(parts) < 5 or not parts[0].isdigit() or not parts[4]:
        return None
    return QueueLogEntry(
        at=datetime.fromtimestamp(int(parts[0]), UTC),
        callid=parts[1],
        queue=_named(parts[2]),
        agent=_named(parts[3]),
        event=parts[4],
        data=tuple(parts[5:]),
    )


@dataclass(frozen=True, slots=True)
class PbxCall:
    """One inbound call as the queue log records it (times to the second)."""

    callid: str
    """The queued channel's Uniqueid (the queue log's ``callid``)."""
    linkedid: str
    tenant: str | None
    callee: str | None
    caller: str | None
    started_at: datetime
    queue: str | None = None
    queued_at: datetime | None = None
    agent_member: str | None = None
    """The queue member's name (``"<工号> <name>"`` for ccbridge's members)."""
    answered_at: datetime | None = None
    abandoned: bool = False
    ended_at: datetime | None = None
    lines: tuple[str, ...] = field(default=())
    """The queue-log events seen, in order (for the audit's report)."""
    steps: tuple[QueueLogEntry, ...] = field(default=())
    """The call's queue lines (queue joins, answers, blind transfers, abandons), in order:
    every queue and agent segment is rebuilt from them, not only the first."""

    @property
    def outcome(self) -> str:
        """``answered``, ``abandoned``, ``unanswered`` or ``in_progress``."""
        if self.answered_at is not None:
            return "answered"
        if self.abandoned:
            return "abandoned"
        return "unanswered" if self.ended_at is not None else "in_progress"


def _identity(entry: QueueLogEntry) -> tuple[str, str | None, str | None, str | None, datetime]:
    """``linkedid|tenant|did|caller|start`` of a ``CCBCALL``/``CCBEND``/``CCBSTICKY`` line."""
    data = (*entry.data, "", "", "", "", "")
    start = entry.at
    try:
        if data[4]:
            start = datetime.fromtimestamp(float(data[4]), UTC)
    except (ValueError, OverflowError, OSError):
        start = entry.at
    return data[0] or entry.callid, data[1] or None, data[2] or None, data[3] or None, start


_STEP_LINES = frozenset({"ENTERQUEUE", _BLIND_LINE, STICKY_LINE, *_ANSWER_LINES, *_ABANDON_LINES})


def _sticky(entry: QueueLogEntry) -> tuple[str, str, datetime] | None:
    """Agent, interface and answer time of a ``CCBSTICKY`` line (``None`` when malformed)."""
    data = (*entry.data, "", "", "", "", "", "", "", "")
    agent, interface, epoch = data[5], data[6], data[7]
    if not agent or not interface:
        return None
    try:
        at = datetime.fromtimestamp(float(epoch), UTC) if epoch else entry.at
    except (ValueError, OverflowError, OSError):
        at = entry.at
    return agent, interface, min(at, entry.at)


def _fold(call: PbxCall | None, entry: QueueLogEntry) -> PbxCall:
    """Add one line to a call (the first of each kind counts: the skill group is frozen)."""
    if call is None:
        call = PbxCall(entry.callid, entry.callid, None, None, None, entry.at)
    if entry.event in (CALL_LINE, END_LINE, STICKY_LINE):
        linkedid, tenant, did, caller, start = _identity(entry)
        call = replace(
            call,
            linkedid=linkedid,
            tenant=call.tenant or tenant,
            callee=call.callee or did,
            caller=call.caller or caller,
            started_at=min(call.started_at, start),
        )
        if entry.event == END_LINE:  # the hang-up itself: later than any queue exit line
            call = replace(call, ended_at=entry.at)
        sticky = _sticky(entry) if entry.event == STICKY_LINE else None
        if sticky is not None and call.answered_at is None:
            call = replace(
                call,
                queue=call.queue or entry.queue,
                agent_member=sticky[0],
                answered_at=sticky[2],
            )
    elif entry.event == "ENTERQUEUE" and call.queued_at is None:
        caller = entry.data[1] if len(entry.data) > 1 and entry.data[1] else None
        call = replace(call, queue=entry.queue, queued_at=entry.at, caller=call.caller or caller)
    elif entry.event in _ANSWER_LINES and call.answered_at is None:
        call = replace(call, agent_member=entry.agent, answered_at=entry.at)
    elif entry.event in _ABANDON_LINES:
        call = replace(call, abandoned=True, ended_at=call.ended_at or entry.at)
    elif entry.event in _END_LINES:
        call = replace(call, ended_at=call.ended_at or entry.at)
    if entry.event in _STEP_LINES:
        call = replace(call, steps=(*call.steps, entry))
    return replace(call, lines=(*call.lines, entry.event))


def assemble_calls(entries: Iterable[QueueLogEntry]) -> list[PbxCall]:
    """Group queue-log lines into calls by ``callid``, in order of first appearance.

    Lines without a call (``NONE``, ``MANAGER``: member changes) are skipped, so are calls
    that never carried ccbridge's ``CCBCALL``/``CCBEND`` line (not a ccbridge inbound call).
    """
    calls: dict[str, PbxCall] = {}
    tagged: set[str] = set()
    for entry in entries:
        if entry.callid in ("", _NONE, "MANAGER"):
            continue
        calls[entry.callid] = _fold(calls.get(entry.callid), entry)
        if entry.event in (CALL_LINE, END_LINE):
            tagged.add(entry.callid)
    return [call for callid, call in calls.items() if callid in tagged]


def reconstruct_events(
    call: PbxCall, member_interfaces: Mapping[str, str] | None = None
) -> list[TelephonyEvent]:
    """The telephony events the live stream would have carried for *call*, in order.

    The member's interface comes from *member_interfaces* (member name → interface, from
    ``QueueStatus``); unknown, the agent number is derived from the member name alone. Every
    queue the caller entered and every member who answered is replayed in order, so a call
    re-queued after a transfer gets one segment per agent, as the live tracker gives it.
    """
    origin = call.linkedid
    out: list[TelephonyEvent] = [
        ChannelCreated(
            call.started_at,
            origin,
            origin,
            "",
            caller_num=call.caller,
            caller_name=None,
            exten=call.callee,
            context=None,
        )
    ]
    if call.tenant:
        out.append(ChannelVariableSet(call.started_at, origin, origin, "", TENANT_VAR, call.tenant))
    if call.callee:
        out.append(ChannelVariableSet(call.started_at, origin, origin, "", DID_VAR, call.callee))
    out.extend(_segment_events(call, member_interfaces or {}))
    if call.ended_at is not None:
        out.append(ChannelHungUp(call.ended_at, origin, origin, "", cause=HANGUP_CAUSE))
    return out


def _segment_events(call: PbxCall, members: Mapping[str, str]) -> list[TelephonyEvent]:
    """Queue joins, answers, blind transfers and abandons from the call's queue lines.

    An attended transfer's target is not in the queue log (its line names a bridge), so only
    the live stream attributes it; a blind transfer names the extension, and the next queue
    answer (a re-queue to a skill group) opens the next segment. The owner agent's answer on
    the sticky ring is ccbridge's own ``CCBSTICKY`` line.
    """
    origin = call.linkedid
    out: list[TelephonyEvent] = []
    for entry in call.steps:
        if entry.event == STICKY_LINE and (sticky := _sticky(entry)) is not None:
            agent, interface, at = sticky
            out.append(StickyAgentAnswered(at, origin, origin, "", agent, interface, entry.queue))
        if entry.queue is None:
            continue
        if entry.event == "ENTERQUEUE":
            caller = entry.data[1] if len(entry.data) > 1 and entry.data[1] else call.caller
            out.append(CallerJoinedQueue(entry.at, origin, origin, "", entry.queue, caller, None))
        elif entry.event in _ANSWER_LINES:
            out.append(
                AgentAnswered(
                    entry.at,
                    origin,
                    origin,
                    "",
                    queue=entry.queue,
                    member_interface=members.get(entry.agent or "", ""),
                    member_name=entry.agent,
                )
            )
        elif entry.event == _BLIND_LINE and entry.data and entry.data[0]:
            context = entry.data[1] if len(entry.data) > 1 and entry.data[1] else None
            out.append(BlindTransferred(entry.at, origin, origin, "", entry.data[0], context, None))
        elif entry.event in _ABANDON_LINES:
            out.append(CallerAbandoned(entry.at, origin, origin, "", queue=entry.queue))
    return out
