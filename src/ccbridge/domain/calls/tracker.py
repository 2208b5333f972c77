"""Reduce normalised telephony events to call records keyed by Linkedid.

The reducer is order-tolerant: AMI only orders events per channel, duplicates arrive after
a resync overlaps the live stream, and a ``Hangup`` can precede a ``Newstate``. Final states
are sticky, so a late or duplicated event never resurrects an ended call.
"""

from __future__ import annotations

import re
from collections import Counter, deque
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from operator import attrgetter

from ccbridge.domain.calls.events import (
    AgentAnswered,
    AgentCompleted,
    AgentRinging,
    AttendedTransferred,
    BlindTransferred,
    CallerAbandoned,
    CallerJoinedQueue,
    ChannelCreated,
    ChannelHungUp,
    ChannelSnapshot,
    ChannelStateChanged,
    ChannelVariableSet,
    QueueEntrySnapshot,
    StickyAgentAnswered,
    TelephonyEvent,
)
from ccbridge.domain.calls.model import (
    CallControl,
    CallOffer,
    CallRecord,
    CallSegment,
    CallState,
    CallTransfer,
)

TENANT_VAR = "CCB_TENANT"
DID_VAR = "CCB_DID"
EXTRA_VAR_PREFIX = "CCB_X_"
"""Channel variables carrying extras (IVR choices, CRM fields): ``CCB_X_IVR_CHOICE=2``."""
RECONCILED = "reconciled"
"""End reason of a call that vanished from the PBX while ccbridge was not listening."""

_DIALABLE = re.compile(r"^\+?[0-9]{2,32}$")
_UNKNOWN = frozenset({"", "<unknown>", "unknown"})
_AGENT_NO = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_-]{0,31}$")
_CHANNEL_SUFFIX = re.compile(r"-[0-9a-f]{8}(;[12])?$")

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


def interface_of_channel(channel: str) -> str:
    """Strip Asterisk's per-channel suffix.

    ``Local/2002@agents-0000000a;1`` → ``Local/2002@agents``; ``PJSIP/2002-0000000b`` →
    ``PJSIP/2002``.
    """
    return _CHANNEL_SUFFIX.sub("", channel)


_RECORD_FIELDS = tuple(f.name for f in fields(CallRecord))
_record_values = attrgetter(*_RECORD_FIELDS)


class _WorkingCall:
    """The tracker's mutable copy of one call: events change it in place (no frozen copy per
    event); :meth:`snapshot` gives out an immutable :class:`CallRecord` only when it changed.

    Same fields as :class:`CallRecord`, plus ``dirty`` (set by :func:`_set` on a real change).
    """

    __slots__ = (*_RECORD_FIELDS, "dirty")

    call_id: str
    started_at: datetime
    state: CallState
    tenant: str | None
    caller: str | None
    caller_name: str | None
    callee: str | None
    skill_group: str | None
    agent_no: str | None
    agent_interface: str | None
    queued_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    end_reason: str | None
    legs: tuple[str, ...]
    version: int
    offers: tuple[CallOffer, ...]
    segments: tuple[CallSegment, ...]
    transfers: tuple[CallTransfer, ...]
    pending_target: str | None
    merged_into: str | None
    extras: tuple[tuple[str, str], ...]
    learned_at: datetime | None
    direction: str
    controls: tuple[CallControl, ...]
    transfer_intent: CallTransfer | None
    dirty: bool

    def __init__(self, record: CallRecord) -> None:
        for name, value in zip(_RECORD_FIELDS, _record_values(record), strict=True):
            object.__setattr__(self, name, value)
        self.dirty = False

    def snapshot(self) -> CallRecord:
        """The immutable record as it stands now."""
        return CallRecord(*_record_values(self))

    @property
    def current_agent_no(self) -> str | None:
        """The agent handling the call now (the last segment's), or ``None``."""
        return self.segments[-1].agent_no if self.segments else None


def _set(rec: _WorkingCall, **values: object) -> _WorkingCall:
    """Change fields in place; only a value that differs marks the call changed."""
    for name, value in values.items():
        if getattr(rec, name) != value:
            setattr(rec, name, value)
            rec.dirty = True
    return rec


def _open_segment(
    rec: _WorkingCall,
    *,
    agent_no: str,
    interface: str,
    via: str,
    at: datetime,
    close: bool = True,
) -> _WorkingCall:
    """Start the next agent leg, copying the conversation's four variables into it."""
    current = rec.segments[-1] if rec.segments else None
    same_leg = current is not None and current.agent_interface == interface
    if (
        same_leg
        and current is not None
        and (current.ended_at is None or rec.state.is_final or current.started_at == at)
    ):
        return rec  # the same leg again (a duplicate or replayed event)
    segments = list(rec.segments)
    if close and current is not None and current.ended_at is None:
        segments[-1] = replace(current, ended_at=at)
    skill = current.skill_group if current is not None else rec.skill_group
    segments.append(
        CallSegment(
            seq=len(segments) + 1,
            agent_no=agent_no,
            agent_interface=interface,
            skill_group=skill,
            caller=rec.caller,
            callee=rec.callee,
            via=via,
            started_at=at,
            # A leg learnt after the hang-up (events out of order) is already over.
            ended_at=rec.ended_at if rec.state.is_final else None,
        )
    )
    return _set(rec, segments=tuple(segments))


def _offer_key(offer: CallOffer) -> tuple[datetime, str]:
    return offer.at, offer.agent_interface


def _closed_segments(segments: tuple[CallSegment, ...], at: datetime) -> tuple[CallSegment, ...]:
    """End every open agent leg (the call is over)."""
    if not any(s.ended_at is None for s in segments):
        return segments
    return tuple(s if s.ended_at else replace(s, ended_at=at) for s in segments)


def _close_segments(rec: _WorkingCall, at: datetime) -> _WorkingCall:
    """End every open agent leg of a working call."""
    return _set(rec, segments=_closed_segments(rec.segments, at))


def _set_extra(rec: _WorkingCall, name: str, value: str) -> _WorkingCall:
    """Keep the latest value per extra name, first-seen order."""
    key = name.removeprefix(EXTRA_VAR_PREFIX).lower()
    if not key or dict(rec.extras).get(key) == value:
        return rec
    items = [(k, v) for k, v in rec.extras if k != key]
    items.append((key, value))
    return _set(rec, extras=tuple(items))


def _answered(rec: _WorkingCall, event: AgentAnswered) -> _WorkingCall:
    agent = agent_no_from_member(event.member_name, event.member_interface)
    if rec.agent_no is None:
        rec = _set(rec, agent_no=agent, agent_interface=event.member_interface)
    rec = _fill(rec, skill_group=event.queue, answered_at=event.at)
    via = "blind_transfer" if rec.pending_target is not None else "queue"
    before = rec.segments
    rec = _open_segment(rec, agent_no=agent, interface=event.member_interface, via=via, at=event.at)
    if rec.segments != before:
        last = rec.segments[-1]
        rec = _set(
            rec,
            pending_target=None,
            segments=(*rec.segments[:-1], replace(last, skill_group=event.queue)),
        )
    return _advance(rec, CallState.CONNECTED)


def _sticky_answered(rec: _WorkingCall, event: StickyAgentAnswered) -> _WorkingCall:
    """The owner agent took the call on the sticky ring before the queue: its first agent leg
    (``via="sticky"``), in the group the call was routed to, like a queue answer."""
    if rec.agent_no is None:
        rec = _set(rec, agent_no=event.agent_no, agent_interface=event.interface)
    rec = _fill(rec, skill_group=event.queue, answered_at=event.at)
    rec = _open_segment(
        rec, agent_no=event.agent_no, interface=event.interface, via="sticky", at=event.at
    )
    return _advance(rec, CallState.CONNECTED)


def _current_group(rec: _WorkingCall) -> str | None:
    return rec.segments[-1].skill_group if rec.segments else rec.skill_group


def _blind(rec: _WorkingCall, event: BlindTransferred) -> _WorkingCall:
    intent = rec.transfer_intent
    if any(
        t.kind == "blind" and t.at == event.at and t.target == event.target for t in rec.transfers
    ):
        return rec
    done = CallTransfer(
        "blind", event.at, rec.current_agent_no, event.target, from_group=_current_group(rec)
    )
    if intent is not None and intent.target == event.target:
        done = replace(
            done,
            to_agent_no=intent.to_agent_no,
            to_group=intent.to_group,
            to_number=intent.to_number,
        )
        rec = _set(rec, transfer_intent=None)
    return _set(rec, transfers=(*rec.transfers, done), pending_target=event.target)


def _pending_agent(rec: _WorkingCall) -> str | None:
    """The agent a blind transfer is waiting for: the one ccbridge named, else the extension."""
    if rec.pending_target is None:
        return None
    last = rec.transfers[-1] if rec.transfers else None
    if last is not None and last.target == rec.pending_target and last.to_agent_no:
        return last.to_agent_no
    return rec.pending_target


def _outbound_answered(rec: _WorkingCall, at: datetime) -> _WorkingCall:
    """The far end of an agent-dialled call answered: the agent's leg starts."""
    rec = _fill(rec, answered_at=at)
    rec = _open_segment(
        rec,
        agent_no=rec.agent_no or "unknown",
        interface=rec.agent_interface or "",
        via=rec.direction,
        at=at,
    )
    return _advance(rec, CallState.CONNECTED)


def _attended(rec: _WorkingCall, event: AttendedTransferred) -> _WorkingCall:
    interface = interface_of_channel(event.target_channel or "")
    agent = (
        agent_no_from_member(None, interface)
        if interface
        else (known(event.target_caller_num) or "unknown")
    )
    kind = "threeway" if event.dest_type.lower() == "threeway" else "attended"
    if any(t.kind == kind and t.at == event.at and t.target == agent for t in rec.transfers):
        return rec
    done = CallTransfer(kind, event.at, rec.current_agent_no, agent, from_group=_current_group(rec))
    intent = rec.transfer_intent
    if intent is not None and kind == "attended":
        done = replace(
            done,
            to_agent_no=intent.to_agent_no,
            to_group=intent.to_group,
            to_number=intent.to_number,
        )
        agent = intent.to_agent_no or agent
        rec = _set(rec, transfer_intent=None)
    rec = _set(rec, transfers=(*rec.transfers, done))
    via = "threeway" if kind == "threeway" else "attended_transfer"
    return _open_segment(
        rec,
        agent_no=agent,
        interface=interface or agent,
        via=via,
        at=event.at,
        close=kind != "threeway",
    )


@dataclass(slots=True)
class _CallLegs:
    """Channels seen per call: live legs decide when a multi-leg call is over."""

    seen: dict[str, str] = field(default_factory=dict)
    """Uniqueid → newest channel name ("" if unknown), in the order first seen (a transfer's
    untold target is one of them)."""
    hung_up: set[str] = field(default_factory=set)
    answered: dict[str, datetime] = field(default_factory=dict)
    """Uniqueid → when that non-origin leg answered: a blind transfer's target can answer
    before Asterisk reports the ``BlindTransfer`` itself (seen on a real PBX)."""


def _advance(record: _WorkingCall, state: CallState) -> _WorkingCall:
    """Move forward only: a late event never moves a call back or out of a final state."""
    if record.state.is_final or _STATE_RANK[state] < _STATE_RANK[record.state]:
        return record
    return _set(record, state=state)


def _fill(record: _WorkingCall, **values: object) -> _WorkingCall:
    """Set fields that are still empty; frozen values (the four variables) never change."""
    for name, value in values.items():
        if value is not None and getattr(record, name) is None:
            setattr(record, name, value)
            record.dirty = True
    return record


def reduce_call(record: CallRecord | None, event: TelephonyEvent) -> CallRecord:
    """Apply one event to a call record (``None`` = first sight) and return the new record."""
    work = _WorkingCall(record or CallRecord(call_id=event.linkedid, started_at=event.at))
    return _reduce(work, event).snapshot()


def _reduce(rec: _WorkingCall, event: TelephonyEvent) -> _WorkingCall:
    """Apply one event to a working call in place (what :func:`reduce_call` does, uncopied)."""
    if event.at < rec.started_at:
        rec = _set(rec, started_at=event.at)
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
            if (
                not is_origin
                and event.state == "Up"
                and rec.direction != "inbound"
                and rec.answered_at is None
                and interface_of_channel(event.channel) != rec.agent_interface
            ):
                rec = _outbound_answered(rec, event.at)
            if not is_origin and event.state == "Up" and rec.pending_target is not None:
                interface = interface_of_channel(event.channel)
                if agent_no_from_member(None, interface) == rec.pending_target:
                    rec = _open_segment(
                        rec,
                        agent_no=_pending_agent(rec) or rec.pending_target,
                        interface=interface,
                        via="blind_transfer",
                        at=event.at,
                    )
                    rec = _set(rec, pending_target=None)
        case ChannelVariableSet():
            if event.name == TENANT_VAR:
                rec = _fill(rec, tenant=event.value or None)
            elif event.name == DID_VAR and event.value and rec.queued_at is None:
                # An explicit DID beats an Exten guess, but only before the call is queued.
                rec = _set(rec, callee=event.value)
            elif event.name.startswith(EXTRA_VAR_PREFIX):
                rec = _set_extra(rec, event.name, event.value)
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
            offer = CallOffer(
                agent_no_from_member(event.member_name, event.member_interface),
                event.member_interface,
                event.queue,
                event.at,
            )
            if offer not in rec.offers:
                # Sorted by time, so arrival order (AMI only orders per channel) never matters.
                rec = _set(rec, offers=tuple(sorted((*rec.offers, offer), key=_offer_key)))
            rec = _advance(rec, CallState.AGENT_RINGING)
        case AgentAnswered():
            rec = _answered(rec, event)
        case StickyAgentAnswered():
            rec = _sticky_answered(rec, event)
        case BlindTransferred():
            rec = _blind(rec, event)
        case AttendedTransferred():
            rec = _attended(rec, event)
        case AgentCompleted():
            rec = _fill(rec, skill_group=event.queue)
        case CallerAbandoned():
            # Abandon outranks a plain hangup: the origin's Hangup may be processed first.
            # The call ends when the caller gives up: ``ended_at`` is set with the state, so
            # the call.abandoned event has the same time however snapshots were batched.
            if rec.state is not CallState.ABANDONED and rec.answered_at is None:
                rec = _fill(
                    _set(rec, state=CallState.ABANDONED, end_reason="abandoned"),
                    ended_at=event.at,
                )
        case ChannelHungUp():
            pass
    return rec


def missing_events(
    record: CallRecord | None, events: Iterable[TelephonyEvent]
) -> list[TelephonyEvent]:
    """The events that tell ccbridge something new about a call it may already hold.

    A final call keeps what the live stream made of it; an agent leg or a transfer already
    attached is never attached twice (a reconstructed leg may lack the interface the live one
    had), while the legs after it (a re-queue, a transfer in the gap) are added.
    """
    if record is None:
        return list(events)
    if record.state.is_final:
        return []
    known_legs = _attached_steps(record)
    out: list[TelephonyEvent] = []
    for event in events:
        if isinstance(event, CallerJoinedQueue) and record.queued_at is not None:
            continue
        step = _step_key(event)
        if step is not None and known_legs[step] > 0:
            known_legs[step] -= 1
            continue
        out.append(event)
    return out


def _attached_steps(record: CallRecord) -> Counter[tuple[str, str, str | None]]:
    """The agent legs (agent, group) and blind transfers (target) a call already has."""
    steps: Counter[tuple[str, str, str | None]] = Counter(
        ("leg", s.agent_no, s.skill_group) for s in record.segments
    )
    steps.update(("blind", t.target, None) for t in record.transfers if t.kind == "blind")
    return steps


def _step_key(event: TelephonyEvent) -> tuple[str, str, str | None] | None:
    """What a rebuilt event would attach, in the terms of :func:`_attached_steps`."""
    if isinstance(event, AgentAnswered):
        agent = agent_no_from_member(event.member_name, event.member_interface)
        return ("leg", agent, event.queue)
    if isinstance(event, StickyAgentAnswered):
        return ("leg", event.agent_no, event.queue)
    if isinstance(event, BlindTransferred):
        return ("blind", event.target, None)
    return None


class CallTracker:
    """Hold live calls and reduce events into them; report which records changed."""

    def __init__(self, *, keep_ended: int = 10_000) -> None:
        self._calls: dict[str, CallRecord] = {}
        self._legs: dict[str, _CallLegs] = {}
        self._ended_order: deque[str] = deque()
        self._keep_ended = keep_ended
        self._aliases: dict[str, str] = {}
        """Consultation Linkedids folded into a surviving conversation by attended transfer."""
        self._work: dict[str, _WorkingCall] = {}
        """The working copy of each call events last changed; dropped whenever anything else
        replaces the call's record, and rebuilt from that record on the next event."""

    def clear(self) -> None:
        """Forget every call (this node stopped owning the PBX; the next owner rebuilds them)."""
        self._calls.clear()
        self._legs.clear()
        self._ended_order.clear()
        self._aliases.clear()
        self._work.clear()

    def _put(self, rec: CallRecord) -> CallRecord:
        """Store a record made outside the event path (its working copy is now stale)."""
        self._calls[rec.call_id] = rec
        self._work.pop(rec.call_id, None)
        return rec

    def apply_event(self, event: TelephonyEvent) -> list[CallRecord]:
        """Apply one event; return every record it changed (a transfer may close a second)."""
        survivor = self._aliases.get(event.linkedid)
        if survivor is not None:
            event = replace(event, linkedid=survivor)
        if isinstance(event, AttendedTransferred) and not event.target_channel:
            event = replace(event, target_channel=self._untold_target(event))
        changed: list[CallRecord] = []
        if isinstance(event, AttendedTransferred) and event.merged_linkedid:
            merged = self._merge(event.merged_linkedid, event.linkedid, event.at)
            if merged is not None:
                changed.append(merged)
        record = self._apply_one(event)
        if record is not None:
            changed.append(record)
        return changed

    def apply(self, event: TelephonyEvent) -> CallRecord | None:
        """Apply one event; return the record if it changed (with its version bumped)."""
        changed = self.apply_event(event)
        return changed[-1] if changed else None

    def _merge(self, merged_id: str, survivor: str, at: datetime) -> CallRecord | None:
        """Fold a consultation call into *survivor*: later events of it count there."""
        if merged_id == survivor:
            return None
        self._aliases[merged_id] = survivor
        old = self._calls.get(merged_id)
        if old is None or old.merged_into == survivor:
            return None
        done = replace(
            old,
            segments=_closed_segments(old.segments, at),
            merged_into=survivor,
            state=CallState.ENDED if not old.state.is_final else old.state,
            ended_at=old.ended_at or at,
            end_reason=old.end_reason or "merged",
            version=old.version + 1,
        )
        self._put(done)
        if not old.state.is_final:
            self._remember_ended(merged_id)
        return done

    def _untold_target(self, event: AttendedTransferred) -> str | None:
        """The target of a transfer completed while it still rang ("blond"), which Asterisk's
        ``AttendedTransfer`` then does not name: the newest live channel of the call that is
        not the transferee's, the transferer's, the caller's or an agent's already on it."""
        legs = self._legs.get(event.linkedid)
        if legs is None:
            return None
        rec = self._calls.get(event.linkedid)
        known_parties = [event.channel, event.transferer_channel, legs.seen.get(event.linkedid)]
        taken = {interface_of_channel(name) for name in known_parties if name}
        if rec is not None:
            taken |= {s.agent_interface for s in rec.segments if s.ended_at is None}
        for uniqueid, name in reversed(legs.seen.items()):
            if name and uniqueid not in legs.hung_up and interface_of_channel(name) not in taken:
                return name
        return None

    def _apply_one(self, event: TelephonyEvent) -> CallRecord | None:
        call_id = event.linkedid
        old = self._calls.get(call_id)
        work = self._work.get(call_id)
        if work is None:
            work = _WorkingCall(old or CallRecord(call_id=call_id, started_at=event.at))
            self._work[call_id] = work
        was_final = work.state.is_final
        work.dirty = old is None
        try:
            work = _reduce(work, event)
            work = self._track_legs(work, event)
            if isinstance(event, BlindTransferred):
                work = self._target_already_answered(work)
        except BaseException:
            del self._work[call_id]  # half-applied: rebuild from the last record next time
            raise
        if not work.dirty:
            return None
        work.dirty = False
        work.version = (old.version + 1) if old else 1
        new = work.snapshot()
        self._calls[call_id] = new
        if new.state.is_final and (old is None or not was_final):
            self._remember_ended(call_id)
        return new

    def apply_all(self, events: Iterable[TelephonyEvent]) -> list[CallRecord]:
        """Apply events in order; return the final version of every changed record."""
        changed: dict[str, CallRecord] = {}
        for event in events:
            for rec in self.apply_event(event):
                changed[rec.call_id] = rec
        return list(changed.values())

    def reconstruct(
        self, events: Iterable[TelephonyEvent], learned_at: datetime
    ) -> list[CallRecord]:
        """Apply events rebuilt after a gap (PBX records, a resync's snapshot): per call only
        what it lacks; every record they change is marked as learned at *learned_at*."""
        by_call: dict[str, list[TelephonyEvent]] = {}
        for event in events:
            call_id = self._aliases.get(event.linkedid, event.linkedid)
            by_call.setdefault(call_id, []).append(event)
        changed: dict[str, CallRecord] = {}
        for call_id, evs in by_call.items():
            for event in missing_events(self._calls.get(call_id), evs):
                for rec in self.apply_event(event):
                    changed[rec.call_id] = rec
        marked: list[CallRecord] = []
        for call_id in changed:
            marked.append(self._put(replace(self._calls[call_id], learned_at=learned_at)))
        return marked

    def reconcile(
        self, live_linkedids: set[str], at: datetime, among: Collection[str] | None = None
    ) -> list[CallRecord]:
        """End every open call the PBX no longer has (after a resync); each is closed once.

        With *among*, only those calls may be closed: the ones held when the PBX's snapshot
        was asked for. A call learned later (from records read after it) may have begun
        after the snapshot was made, so its absence from it says nothing.
        """
        closed: list[CallRecord] = []
        for call_id, rec in list(self._calls.items()):
            if rec.state.is_final or call_id in live_linkedids:
                continue
            if among is not None and call_id not in among:
                continue
            done = self._put(
                replace(
                    rec,
                    segments=_closed_segments(rec.segments, at),
                    state=CallState.ENDED,
                    ended_at=at,
                    end_reason=RECONCILED,
                    version=rec.version + 1,
                )
            )
            self._remember_ended(call_id)
            closed.append(done)
        return closed

    def restore(self, records: Iterable[CallRecord], *, include_final: bool = False) -> int:
        """Load calls persisted by an earlier process; the next resync reconciles open ones.

        Without this, a call that was live when the process died would stay open forever.
        With *include_final*, ended calls are loaded too (a backfill then leaves them be).
        """
        count = 0
        for rec in records:
            if rec.call_id in self._calls or (rec.state.is_final and not include_final):
                continue
            self._put(rec)
            self._legs[rec.call_id] = _CallLegs(seen=dict.fromkeys(rec.legs, ""))
            if rec.state.is_final:
                self._remember_ended(rec.call_id)
            count += 1
        return count

    def get(self, call_id: str) -> CallRecord | None:
        """Return the current record of a call."""
        return self._calls.get(call_id)

    def live_channels(self, call_id: str) -> list[str]:
        """Names of the call's channels still up, in the order first seen."""
        legs = self._legs.get(call_id)
        if legs is None:
            return []
        return [n for u, n in legs.seen.items() if n and u not in legs.hung_up]

    def note(self, call_id: str, step: CallControl) -> CallRecord | None:
        """Record a call-control step ccbridge carried out; ``None`` if the call is unknown,
        over, or already has this very step."""
        rec = self._calls.get(call_id)
        if rec is None or rec.state.is_final or step in rec.controls:
            return None
        return self._store(replace(rec, controls=(*rec.controls, step)))

    def expect_transfer(self, call_id: str, intent: CallTransfer | None) -> CallRecord | None:
        """Remember whom ccbridge is transferring the call to, so the PBX's transfer event is
        told with the agent, group or number the agent named."""
        rec = self._calls.get(call_id)
        if rec is None or rec.state.is_final:
            return None
        return self._store(replace(rec, transfer_intent=intent))

    def start_call(self, record: CallRecord) -> CallRecord:
        """Register a call ccbridge originates, under the Linkedid it gave the first channel,
        before the PBX reports it (the four variables are known up front)."""
        old = self._calls.get(record.call_id)
        if old is not None:
            return old
        return self._store(record)

    def _store(self, rec: CallRecord) -> CallRecord:
        old = self._calls.get(rec.call_id)
        return self._put(replace(rec, version=(old.version + 1) if old else max(rec.version, 1)))

    def open_calls(self) -> list[CallRecord]:
        """Return the calls that have not ended."""
        return [r for r in self._calls.values() if not r.state.is_final]

    def all_calls(self) -> list[CallRecord]:
        """Return every record still held (open ones and recently ended ones)."""
        return list(self._calls.values())

    def _target_already_answered(self, rec: _WorkingCall) -> _WorkingCall:
        """Open the blind-transfer target's leg when it answered before the transfer event."""
        legs = self._legs.get(rec.call_id)
        if rec.pending_target is None or legs is None:
            return rec
        on_call = {s.agent_interface for s in rec.segments if s.ended_at is None}
        for uniqueid, answered_at in legs.answered.items():
            interface = interface_of_channel(legs.seen.get(uniqueid, ""))
            if (
                uniqueid in legs.hung_up
                or interface in on_call
                or agent_no_from_member(None, interface) != rec.pending_target
            ):
                continue
            rec = _open_segment(
                rec,
                agent_no=_pending_agent(rec) or rec.pending_target,
                interface=interface,
                via="blind_transfer",
                at=answered_at,
            )
            return _set(rec, pending_target=None)
        return rec

    def _track_legs(self, rec: _WorkingCall, event: TelephonyEvent) -> _WorkingCall:
        legs = self._legs.setdefault(event.linkedid, _CallLegs())
        if event.uniqueid not in legs.seen:
            rec = _set(rec, legs=(*rec.legs, event.uniqueid))
        legs.seen[event.uniqueid] = event.channel or legs.seen.get(event.uniqueid, "")
        if (
            isinstance(event, ChannelStateChanged)
            and event.state == "Up"
            and event.uniqueid != event.linkedid
        ):
            legs.answered.setdefault(event.uniqueid, event.at)
        if not isinstance(event, ChannelHungUp):
            return rec
        legs.hung_up.add(event.uniqueid)
        origin_gone = event.linkedid in legs.hung_up
        all_gone = legs.hung_up.issuperset(legs.seen)
        if not (origin_gone or all_gone):
            return rec
        if rec.state is CallState.ABANDONED:
            return _close_segments(_fill(rec, ended_at=event.at), event.at)
        if rec.state.is_final:
            return rec
        return _close_segments(
            _set(rec, state=CallState.ENDED, ended_at=event.at, end_reason=event.cause or "hangup"),
            event.at,
        )

    def _remember_ended(self, call_id: str) -> None:
        self._ended_order.append(call_id)
        while len(self._ended_order) > self._keep_ended:
            old = self._ended_order.popleft()
            self._calls.pop(old, None)
            self._work.pop(old, None)
            self._legs.pop(old, None)
            self._aliases.pop(old, None)
