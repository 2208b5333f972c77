"""Call control an agent asks for on its current call, and the seat function each one needs
(SEAT-01/02): an inbound-only seat may hold, transfer internally and hand back to IVR, but not
dial out, transfer out or hold a 3-way call (pure, stdlib only)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from ccbridge.domain.leases.model import Capability

FLOW_NODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
"""An IVR flow node id as the flow format allows it (safe in a channel variable)."""


class ControlKind(StrEnum):
    """What the agent asked for."""

    HOLD = "hold"
    RESUME = "resume"
    MUTE = "mute"
    UNMUTE = "unmute"
    BLIND_TRANSFER = "blind_transfer"
    ATTENDED_TRANSFER = "attended_transfer"
    COMPLETE_TRANSFER = "complete_transfer"
    CANCEL_TRANSFER = "cancel_transfer"
    CONFERENCE = "conference"
    LEAVE_CONFERENCE = "leave_conference"
    RETURN_TO_IVR = "return_to_ivr"
    INTERNAL_CALL = "internal_call"
    OUTBOUND_CALL = "outbound_call"
    HANGUP = "hangup"


class TargetKind(StrEnum):
    """Where a transfer or a 3-way call goes."""

    AGENT = "agent"
    GROUP = "group"
    NUMBER = "number"


@dataclass(frozen=True, slots=True)
class Target:
    """An agent (工号), a skill group name, or an external number as the agent typed it."""

    kind: TargetKind
    value: str


_PLAIN: dict[ControlKind, Capability] = {
    ControlKind.HOLD: Capability.HOLD,
    ControlKind.RESUME: Capability.HOLD,
    ControlKind.MUTE: Capability.HOLD,
    ControlKind.UNMUTE: Capability.HOLD,
    ControlKind.HANGUP: Capability.HOLD,
    ControlKind.COMPLETE_TRANSFER: Capability.INTERNAL_TRANSFER,
    ControlKind.CANCEL_TRANSFER: Capability.INTERNAL_TRANSFER,
    ControlKind.CONFERENCE: Capability.THREE_WAY_CALL,
    ControlKind.LEAVE_CONFERENCE: Capability.THREE_WAY_CALL,
    ControlKind.RETURN_TO_IVR: Capability.HAND_BACK_TO_IVR,
    ControlKind.INTERNAL_CALL: Capability.INTERNAL_CALL,
    ControlKind.OUTBOUND_CALL: Capability.OUTBOUND_CALL,
}


def required_capability(kind: ControlKind, target: Target | None = None) -> Capability:
    """The seat function *kind* needs: a transfer to a number is a transfer out (SEAT-02);
    to an agent or a group it is an internal transfer (SEAT-01). Hold, mute and hang-up ride
    on the hold function every seat has."""
    if kind in (ControlKind.BLIND_TRANSFER, ControlKind.ATTENDED_TRANSFER):
        if target is not None and target.kind is TargetKind.NUMBER:
            return Capability.TRANSFER_OUT
        return Capability.INTERNAL_TRANSFER
    return _PLAIN[kind]


def check_flow_node(node: str) -> str:
    """Return *node* if it can name an IVR flow node, else raise ValueError."""
    if not FLOW_NODE_RE.fullmatch(node):
        raise ValueError("a flow node id is 1-64 letters, digits, '_', '.' or '-'")
    return node


HELD = "held"
RESUMED = "resumed"
MUTED = "muted"
UNMUTED = "unmuted"
CONFERENCED = "conferenced"
LEFT_CONFERENCE = "left_conference"
RETURNED_TO_IVR = "returned_to_ivr"
TRANSFER_STARTED = "transfer_started"
TRANSFER_CANCELLED = "transfer_cancelled"
HUNG_UP = "hung_up"
"""Names of the call-control steps a call record keeps (``CallControl.kind``)."""
