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
class CallOffer:
    """One agent rung for this call (``AgentCalled``): the screen-pop moment."""

    agent_no: str
    agent_interface: str
    skill_group: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class CallSegment:
    """One agent leg of a conversation with its own frozen four variables.

    The first segment starts when a queue member answers; each transfer that reaches a new
    agent opens the next one. ``via`` says how the agent got the call: ``queue``,
    ``blind_transfer``, ``attended_transfer`` or ``threeway``.
    """

    seq: int
    agent_no: str
    agent_interface: str
    skill_group: str | None
    caller: str | None
    callee: str | None
    via: str
    started_at: datetime
    ended_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CallTransfer:
    """A completed transfer request: who handed the call on, to what, and how."""

    kind: str
    """``blind``, ``attended`` or ``threeway``."""
    at: datetime
    from_agent_no: str | None
    target: str
    to_agent_no: str | None = None
    """The agent the call was handed to, when ccbridge started the transfer for an agent."""
    to_group: str | None = None
    """The skill group the call was re-queued to."""
    to_number: str | None = None
    """The external number (E.164) the call was transferred out to."""
    from_group: str | None = None


@dataclass(frozen=True, slots=True)
class CallControl:
    """A call-control step ccbridge carried out on the call (hold, resume, mute, conference,
    hand-back to IVR...), in the order they happened."""

    kind: str
    at: datetime
    agent_no: str | None
    detail: tuple[tuple[str, str], ...] = ()


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
    offers: tuple[CallOffer, ...] = field(default=())
    """Agents rung for this call, in order (each one is a ``call.ringing``)."""
    segments: tuple[CallSegment, ...] = field(default=())
    """Agent legs in order; the last one open is the agent on the call now."""
    transfers: tuple[CallTransfer, ...] = field(default=())
    pending_target: str | None = None
    """Blind-transfer target extension waiting to answer."""
    merged_into: str | None = None
    """Set on a consultation call folded into another conversation by an attended transfer."""
    extras: tuple[tuple[str, str], ...] = field(default=())
    """Extra variables (``CCB_X_*`` channel variables, e.g. IVR choices), in arrival order;
    exposed to a tenant only when it switched that extra on."""
    learned_at: datetime | None = None
    """When ccbridge last learned part of this call after the fact (from the PBX's records or
    a resync after an AMI gap); the events of that change are flagged reconstructed."""
    direction: str = "inbound"
    """``inbound`` (a customer called in), ``outbound`` (click-to-call) or ``internal``."""
    controls: tuple[CallControl, ...] = field(default=())
    """Call-control steps in order (``held``, ``resumed``, ``conferenced``...)."""
    transfer_intent: CallTransfer | None = None
    """A transfer ccbridge has asked the PBX for and not yet seen happen."""

    @property
    def held(self) -> bool:
        """Whether the customer is on hold now (the last hold/resume step was a hold)."""
        for step in reversed(self.controls):
            if step.kind in ("held", "resumed"):
                return step.kind == "held"
        return False

    @property
    def current_agent_no(self) -> str | None:
        """The agent handling the call now (the last segment's), or ``None``."""
        return self.segments[-1].agent_no if self.segments else None
