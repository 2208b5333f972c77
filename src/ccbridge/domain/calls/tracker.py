"""Reduce normalised telephony events to call records keyed by Linkedid.

The reducer is order-tolerant: AMI only orders events per channel, duplicates arrive after
a resync overlaps the live stream, and a ``Hangup`` can precede a ``Newstate``. Final states
are sticky, so a late or duplicated event never resurrects an ended call.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

from ccbridge.domain.calls.events import (
    AgentAnswered,
    AgentCompleted,
    AgentRinging,
    CallerAbandoned,
    CallerJoinedQueue,
    ChannelCreated,
    ChannelHungUp,
    ChannelSnapshot,
    ChannelStateChanged,
    ChannelVariableSet,
    QueueEntrySnapshot,
    TelephonyEvent,
)
from ccbridge.domain.calls.model import CallRecord, CallState

TENANT_VAR = "CCB_TENANT"
DID_VAR = "CCB_DID"
RECONCILED = "reconciled"
"""End reason of a call that vanished from the PBX while ccbridge was not listening."""

_DIALABLE = re.compile(r"^\+?[0-9]{2,32}$")
_UNKNOWN = frozenset({"", "<unknown>", "unknown"})
_AGENT_NO = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_-]{0,31}$")

_STATE_RANK = {
    CallState.RINGING: 0,
    CallState.IVR: 1,
    CallState.QUEUED: 2,
    CallState.AGENT_RINGING: 3,
    CallState.CONNECTED: 4,
    CallState.ENDED: 9,
    CallState.ABANDONED: 9,
}


def known(value: str | None) -> str | None:
    """Return ``value`` unless Asterisk marks it unknown."""
    if value is None or value.strip() in _UNKNOWN:
        return None
    return value


def agent_no_from_member(member_name: str | None, interface: str) -> str:
    """Derive the agent number (工号): ccbridge names members ``"<工号> <name>"``.

    A member not named that way falls back to the extension of its interface
    (``Local/2001@agents`` → ``2001``), or the whole interface, so it is never lost.
    """
    if member_name:
        first = member_name.split(" ", 1)[0]
        if _AGENT_NO.match(first) and any(ch.isdigit() for ch in first):
            return first
    _, slash, rest = interface.partition("/")
    exten = rest.split("@", 1)[0] if slash else ""
    return exten if exten and _AGENT_NO.match(exten) else interface


@dataclass(slots=True)
class _CallLegs:
    """Channels seen per call: live legs decide when a multi-leg call is over."""

    seen: list[str] = field(default_factory=list)
    hung_up: set[str] = field(default_factory=set)


def _advance(record: CallRecord, state: CallState) -> CallRecord:
    """Move forward only: a late event never moves a call back or out of a final state."""
    if record.state.is_final or _STATE_RANK[state] < _STATE_RANK[record.state]:
        return record
    return replace(record, state=state)


def _fill(record: CallRecord, **values: object) -> CallRecord:
    """Set fields that are still empty; frozen values (the four variables) never change."""
    changes = {k: v for k, v in values.items() if v is not None and getattr(record, k) is None}
    return replace(record, **changes) if changes else record  # type: ignore[arg-type]


def reduce_call(record: CallRecord | None, event: TelephonyEvent) -> CallRecord:
    """Apply one event to a call record (``None`` = first sight) and return the new record."""
    rec = record or CallRecord(call_id=event.linkedid, started_at=event.at)
    if event.at < rec.started_at:
        rec = replace(rec, started_at=event.at)
    is_origin = event.uniqueid == event.linkedid
    match event:
        case ChannelCreated() | ChannelSnapshot():
            if is_origin:
                callee = event.exten if event.exten and _DIALABLE.match(event.exten) else None
                rec = _fill(
                    rec,
                    caller=known(event.caller_num),
                    caller_name=known(event.caller_name),
                    callee=callee,
                )
            if isinstance(event, ChannelSnapshot) and event.state == "Up":
                rec = _advance(rec, CallState.IVR if rec.skill_group is None else rec.state)
        case ChannelStateChanged():
            if is_origin:
                rec = _fill(
                    rec, caller=known(event.caller_num), caller_name=known(event.caller_name)
                )
            if is_origin and event.state == "Up" and rec.skill_group is None:
                rec = _advance(rec, CallState.IVR)
        case ChannelVariableSet():
            if event.name == TENANT_VAR:
                rec = _fill(rec, tenant=event.value or None)
            elif event.name == DID_VAR and event.value and rec.queued_at is None:
                # An explicit DID beats an Exten guess, but only before the call is queued.
                rec = replace(rec, callee=event.value)
        case CallerJoinedQueue() | QueueEntrySnapshot():
            rec = _fill(
                rec,
                skill_group=event.queue,
                caller=known(event.caller_num),
                caller_name=known(event.caller_name),
                queued_at=event.at,
            )
            rec = _advance(rec, CallState.QUEUED)
        case AgentRinging():
            rec = _fill(rec, skill_group=event.queue)
            rec = _advance(rec, CallState.AGENT_RINGING)
        case AgentAnswered():
            agent = agent_no_from_member(event.member_name, event.member_interface)
            if rec.agent_no is None:
                rec = replace(rec, agent_no=agent, agent_interface=event.member_interface)
            rec = _fill(rec, skill_group=event.queue, answered_at=event.at)
            rec = _advance(rec, CallState.CONNECTED)
        case AgentCompleted():
            rec = _fill(rec, skill_group=event.queue)
        case CallerAbandoned():
            # Abandon outranks a plain hangup: the origin's Hangup may be processed first.
            if rec.state is not CallState.ABANDONED and rec.answered_at is None:
                rec = replace(rec, state=CallState.ABANDONED, end_reason="abandoned")
        case ChannelHungUp():
            pass
    return rec


class CallTracker:
    """Hold live calls and reduce events into them; report which records changed."""

    def __init__(self, *, keep_ended: int = 10_000) -> None:
        self._calls: dict[str, CallRecord] = {}
        self._legs: dict[str, _CallLegs] = {}
        self._ended_order: deque[str] = deque()
        self._keep_ended = keep_ended

    def apply(self, event: TelephonyEvent) -> CallRecord | None:
        """Apply one event; return the record if it changed (with its version bumped)."""
        old = self._calls.get(event.linkedid)
        new = reduce_call(old, event)
        new = self._track_legs(new, event)
        if old is not None and _same(old, new):
            return None
        new = replace(new, version=(old.version + 1) if old else 1)
        self._calls[new.call_id] = new
        if new.state.is_final and (old is None or not old.state.is_final):
            self._remember_ended(new.call_id)
        return new

    def apply_all(self, events: Iterable[TelephonyEvent]) -> list[CallRecord]:
        """Apply events in order; return the final version of every changed record."""
        changed: dict[str, CallRecord] = {}
        for event in events:
            rec = self.apply(event)
            if rec is not None:
                changed[rec.call_id] = rec
        return list(changed.values())

    def reconcile(self, live_linkedids: set[str], at: datetime) -> list[CallRecord]:
        """End every open call the PBX no longer has (after a resync); each is closed once."""
        closed: list[CallRecord] = []
        for call_id, rec in list(self._calls.items()):
            if rec.state.is_final or call_id in live_linkedids:
                continue
            done = replace(
                rec,
                state=CallState.ENDED,
                ended_at=at,
                end_reason=RECONCILED,
                version=rec.version + 1,
            )
            self._calls[call_id] = done
            self._remember_ended(call_id)
            closed.append(done)
        return closed

    def restore(self, records: Iterable[CallRecord]) -> int:
        """Load open calls persisted by an earlier process; the next resync reconciles them.

        Without this, a call that was live when the process died would stay open forever.
        """
        count = 0
        for rec in records:
            if rec.state.is_final or rec.call_id in self._calls:
                continue
            self._calls[rec.call_id] = rec
            self._legs[rec.call_id] = _CallLegs(seen=list(rec.legs))
            count += 1
        return count

    def get(self, call_id: str) -> CallRecord | None:
        """Return the current record of a call."""
        return self._calls.get(call_id)

    def open_calls(self) -> list[CallRecord]:
        """Return the calls that have not ended."""
        return [r for r in self._calls.values() if not r.state.is_final]

    def all_calls(self) -> list[CallRecord]:
        """Return every record still held (open ones and recently ended ones)."""
        return list(self._calls.values())

    def _track_legs(self, rec: CallRecord, event: TelephonyEvent) -> CallRecord:
        legs = self._legs.setdefault(event.linkedid, _CallLegs())
        if event.uniqueid not in legs.seen:
            legs.seen.append(event.uniqueid)
            rec = replace(rec, legs=(*rec.legs, event.uniqueid))
        if not isinstance(event, ChannelHungUp):
            return rec
        legs.hung_up.add(event.uniqueid)
        origin_gone = event.linkedid in legs.hung_up
        all_gone = legs.hung_up.issuperset(legs.seen)
        if not (origin_gone or all_gone):
            return rec
        if rec.state is CallState.ABANDONED:
            return _fill(rec, ended_at=event.at)
        if rec.state.is_final:
            return rec
        return replace(
            rec, state=CallState.ENDED, ended_at=event.at, end_reason=event.cause or "hangup"
        )

    def _remember_ended(self, call_id: str) -> None:
        self._ended_order.append(call_id)
        while len(self._ended_order) > self._keep_ended:
            old = self._ended_order.popleft()
            self._calls.pop(old, None)
            self._legs.pop(old, None)


def _same(a: CallRecord, b: CallRecord) -> bool:
    """Compare two records ignoring the version counter."""
    return replace(a, version=0) == replace(b, version=0)
