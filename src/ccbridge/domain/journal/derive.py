"""Turn call-record transitions and agent/wrap-up facts into journal events (pure).

Events are derived from the last *persisted* record and the new one, from timestamps and
append-only histories (offers, segments, transfers), so coalescing snapshots in the batch
writer never loses an intermediate step, and re-deriving the same pair yields the same keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ccbridge.domain.calls.model import CallOffer, CallRecord, CallSegment, CallState
from ccbridge.domain.calls.numbers import to_e164
from ccbridge.domain.journal.types import EventType, NewEvent


def _number(raw: str | None) -> str | None:
    return None if raw is None else (to_e164(raw) or raw)


def four_variables(
    *, agent_no: str | None, skill_group: str | None, caller: str | None, callee: str | None
) -> dict[str, Any]:
    """The contract's four variables (工号, 技能组, 主叫, 被叫); numbers E.164 when parseable,
    the PBX's original text beside them."""
    return {
        "agent_no": agent_no,
        "skill_group": skill_group,
        "caller": _number(caller),
        "callee": _number(callee),
        "caller_original": caller,
        "callee_original": callee,
    }


def segment_params(seg: CallSegment) -> dict[str, Any]:
    """The four variables frozen on one agent leg."""
    return four_variables(
        agent_no=seg.agent_no, skill_group=seg.skill_group, caller=seg.caller, callee=seg.callee
    )


def call_params(rec: CallRecord) -> dict[str, Any]:
    """The four variables of the conversation as it stands: the current agent's leg, else the
    conversation's (before any agent answered)."""
    if rec.segments:
        return segment_params(rec.segments[-1])
    return four_variables(
        agent_no=rec.agent_no, skill_group=rec.skill_group, caller=rec.caller, callee=rec.callee
    )


def _call_data(rec: CallRecord, params: dict[str, Any], **more: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "call_id": rec.call_id,
        "state": rec.state.value,
        "params": params,
        "extras": dict(rec.extras),
    }
    data.update(more)
    return data


@dataclass(frozen=True, slots=True)
class _Emit:
    type: EventType
    at: datetime
    key: str
    data: dict[str, Any]


def _offer_params(rec: CallRecord, offer: CallOffer) -> dict[str, Any]:
    return four_variables(
        agent_no=offer.agent_no,
        skill_group=offer.skill_group or rec.skill_group,
        caller=rec.caller,
        callee=rec.callee,
    )


def call_events(old: CallRecord | None, new: CallRecord) -> list[NewEvent]:
    """Events for everything *new* adds over *old* (``None`` = nothing emitted yet).

    A call without a tenant emits nothing (it belongs to no CRM); when the tenant becomes
    known, every step so far is emitted at once. Consultation calls folded into another
    conversation emit nothing further.
    """
    if new.tenant is None or new.merged_into is not None:
        return []
    if old is not None and old.tenant is None:
        old = None
    out: list[_Emit] = []
    cid = new.call_id
    if new.queued_at is not None and (old is None or old.queued_at is None):
        out.append(
            _Emit(
                EventType.CALL_QUEUED,
                new.queued_at,
                "queued",
                _call_data(
                    new,
                    four_variables(
                        agent_no=None,
                        skill_group=new.skill_group,
                        caller=new.caller,
                        callee=new.callee,
                    ),
                    queued_at=new.queued_at.isoformat(),
                ),
            )
        )
    seen_offers = 0 if old is None else len(old.offers)
    for idx, offer in enumerate(new.offers[seen_offers:], start=seen_offers + 1):
        out.append(
            _Emit(
                EventType.CALL_RINGING,
                offer.at,
                f"ringing:{idx}",
                _call_data(new, _offer_params(new, offer), agent_interface=offer.agent_interface),
            )
        )
    old_segments = 0 if old is None else len(old.segments)
    old_transfers = 0 if old is None else len(old.transfers)
    for idx, transfer in enumerate(new.transfers[old_transfers:], start=old_transfers + 1):
        seg = _segment_after(new, transfer.at)
        out.append(
            _Emit(
                EventType.CALL_TRANSFERRED,
                transfer.at,
                f"transferred:{idx}",
                _call_data(
                    new,
                    segment_params(seg) if seg is not None else call_params(new),
                    transfer={
                        "kind": transfer.kind,
                        "from_agent_no": transfer.from_agent_no,
                        "target": transfer.target,
                        "from_group": transfer.from_group,
                        "to_agent_no": transfer.to_agent_no,
                        "to_group": transfer.to_group,
                        "to_number": transfer.to_number,
                    },
                ),
            )
        )
    old_controls = 0 if old is None else len(old.controls)
    for idx, step in enumerate(new.controls[old_controls:], start=old_controls + 1):
        kind = _CONTROL_EVENTS.get(step.kind)
        if kind is None:
            continue
        out.append(
            _Emit(
                kind,
                step.at,
                f"control:{idx}",
                _call_data(
                    new,
                    call_params(new),
                    control={"kind": step.kind, "agent_no": step.agent_no, **dict(step.detail)},
                ),
            )
        )
    for seg in new.segments[old_segments:]:
        if seg.via != "queue" and seg.seq > 1:
            continue  # reached through a transfer: call.transferred carried it
        out.append(
            _Emit(
                EventType.CALL_ANSWERED,
                seg.started_at,
                f"answered:{seg.seq}",
                _call_data(new, segment_params(seg), leg=seg.seq),
            )
        )
    was_final = old is not None and old.state.is_final
    if new.state.is_final and not was_final:
        at = new.ended_at or new.started_at
        kind = (
            EventType.CALL_ABANDONED if new.state is CallState.ABANDONED else EventType.CALL_ENDED
        )
        out.append(
            _Emit(
                kind,
                at,
                "final",
                _call_data(
                    new,
                    call_params(new),
                    end_reason=new.end_reason,
                    legs=[{"leg": s.seq, "via": s.via, **segment_params(s)} for s in new.segments],
                    answered=new.answered_at is not None,
                ),
            )
        )
    if len(out) > 1:
        out.sort(key=lambda e: (e.at, _RANK[e.type]))
    learned = new.learned_at
    if learned is not None and (old is None or old.learned_at != learned):
        # Learned after the fact (an AMI gap): say so, and when, on every event it yields.
        for e in out:
            e.data["reconstructed"] = True
            e.data["learned_at"] = learned.isoformat()
    return [
        NewEvent(
            tenant=new.tenant,
            type=e.type,
            occurred_at=e.at,
            key=f"call:{cid}:{e.key}",
            data=e.data,
            call_id=cid,
        )
        for e in out
    ]


_CONTROL_EVENTS = {
    "held": EventType.CALL_HELD,
    "resumed": EventType.CALL_RESUMED,
    "conferenced": EventType.CALL_CONFERENCED,
    "returned_to_ivr": EventType.CALL_RETURNED_TO_IVR,
}
"""Call-control steps that are journal events (the others only live on the call record)."""

_RANK = {
    EventType.CALL_QUEUED: 0,
    EventType.CALL_RINGING: 1,
    EventType.CALL_ANSWERED: 2,
    EventType.CALL_HELD: 3,
    EventType.CALL_RESUMED: 3,
    EventType.CALL_CONFERENCED: 3,
    EventType.CALL_RETURNED_TO_IVR: 3,
    EventType.CALL_TRANSFERRED: 3,
    EventType.CALL_ENDED: 4,
    EventType.CALL_ABANDONED: 4,
}
"""Tie-break for transitions with the same timestamp: the order a call lives them."""


def _segment_after(rec: CallRecord, at: datetime) -> CallSegment | None:
    """The leg a transfer handed the call to (opened at or after the transfer)."""
    for seg in rec.segments:
        if seg.started_at >= at and seg.via != "queue":
            return seg
    return None


def agent_state_event(
    *,
    tenant: str,
    agent_no: str,
    session_id: str,
    state: str,
    previous_state: str | None,
    reason: str,
    at: datetime,
    version: int,
) -> NewEvent:
    """``agent.state_changed`` for one seat-session write."""
    return NewEvent(
        tenant=tenant,
        type=EventType.AGENT_STATE_CHANGED,
        occurred_at=at,
        key=f"agent:{session_id}:{version}",
        data={
            "agent_no": agent_no,
            "session_id": session_id,
            "state": state,
            "previous_state": previous_state,
            "reason": reason,
        },
    )


def recording_ready_event(
    *,
    tenant: str,
    call_id: str,
    recording_id: str,
    params: dict[str, Any],
    url: str | None,
    duration_s: float | None,
    at: datetime,
) -> NewEvent:
    """``recording.ready`` for one stored recording; keyed by the recording (one event each)."""
    return NewEvent(
        tenant=tenant,
        type=EventType.RECORDING_READY,
        occurred_at=at,
        key=f"recording:{recording_id}",
        call_id=call_id,
        data={
            "call_id": call_id,
            "params": params,
            "recording_id": recording_id,
            "url": url,
            "duration_s": duration_s,
            "extras": {},
        },
    )


def recording_missing_event(
    *, tenant: str, call_id: str, recording_id: str, params: dict[str, Any], at: datetime
) -> NewEvent:
    """``recording.missing``: the policy records this call but the PBX left no file (a call
    answered while AMI was away); keyed by the flagged row, so it is told once."""
    return NewEvent(
        tenant=tenant,
        type=EventType.RECORDING_MISSING,
        occurred_at=at,
        key=f"recording-missing:{recording_id}",
        call_id=call_id,
        data={
            "call_id": call_id,
            "params": params,
            "recording_id": recording_id,
            "reason": "no_file_after_ami_gap",
            "extras": {},
        },
    )
