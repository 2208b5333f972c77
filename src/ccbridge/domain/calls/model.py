"""The call record: one conversation keyed by Asterisk's Linkedid, with the four call variables."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum


class CallState(StrEnum):
    """Where a call is in its life; ``ENDED`` and ``ABANDONED`` are final."""

    RINGING = "ringing"
    IVR = "ivr"
    QUEUED = "queued"
    AGENT_RINGING = "agent_ringing"
    CONNECTED = "connected"
    ENDED = "ended"
    ABANDONED = "abandoned"

    @property
    def is_final(self) -> bool:
        """Say whether no further event can change this call's outcome."""
        return self in (CallState.ENDED, CallState.ABANDONED)


@dataclass(frozen=True, slots=True)
class CallRecord:
    """A call as ccbridge knows it; the four contract variables are agent_no, skill_group,
    caller and callee (工号, 技能组, 主叫, 被叫)."""

    call_id: str
    """Asterisk ``Linkedid``: stable across every leg of the conversation."""
    started_at: datetime
    state: CallState = CallState.RINGING
    tenant: str | None = None
    caller: str | None = None
    caller_name: str | None = None
    callee: str | None = None
    skill_group: str | None = None
    agent_no: str | None = None
    agent_interface: str | None = None
    queued_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    end_reason: str | None = None
    legs: tuple[str, ...] = field(default=())
    """Uniqueids of the channels seen in this call, in order of appearance."""
    version: int = 0
    """Bumped on every change; lets writers skip stale snapshots."""
