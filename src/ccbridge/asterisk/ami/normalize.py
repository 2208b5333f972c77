"""Turn AMI frames into the domain's telephony events (field names as Asterisk 22 sends them)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from ccbridge.asterisk.ami.codec import AmiFields
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
from ccbridge.domain.calls.tracker import interface_of_channel
from ccbridge.domain.time import from_pbx_timestamp

CCB_VAR_PREFIX = "CCB_"
STICKY_AGENT_VAR = "CCB_STICKY_AGENT"
STICKY_INTERFACE_VAR = "CCB_STICKY_INTERFACE"
STICKY_QUEUE_VAR = "CCB_STICKY_QUEUE"
"""What ``[ccbridge-route]`` hands the owner agent's leg (inherited, reported by
``channelvars``): the agent, the interface it dialled and the group's queue."""
STICKY_FILE_VAR = "CCB_STICKY_FILE"
"""Also inherited by the owner's leg: the call's file name when the dialplan records the
owner's answer itself (``[ccbridge-record-answer]``, ADR 0025); empty when it does not."""
Now = Callable[[], datetime]


def duration(value: str | None) -> timedelta:
    """Parse ``CoreShowChannel`` ``Duration: HH:MM:SS``; anything else counts as zero."""
    parts = (value or "").split(":")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return timedelta()
    hours, minutes, seconds = (int(p) for p in parts)
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)


def _base(
    msg: AmiFields, now: Now, linkedid_of: Mapping[str, str] | None = None
) -> tuple[datetime, str, str, str] | None:
    uniqueid = msg.get("Uniqueid")
    if not uniqueid:
        return None
    # QueueEntry carries no Linkedid: the resync supplies it from CoreShowChannels.
    linkedid = msg.get("Linkedid") or (linkedid_of or {}).get(uniqueid) or uniqueid
    at = from_pbx_timestamp(msg.get("Timestamp"))
    if at is None:
        at = now() - duration(msg.get("Duration"))
    return at, linkedid, uniqueid, msg.get("Channel") or ""


def _channel_vars(msg: AmiFields, now: Now) -> list[TelephonyEvent]:
    """Read ``ChanVariable: CCB_X=…`` headers that ``manager.conf channelvars=`` adds."""
    if not msg.has("ChanVariable"):
        return []
    base = _base(msg, now)
    if base is None:
        return []
    return [
        ChannelVariableSet(*base, name=name, value=value)
        for name, value in msg.variables().items()
        if name.startswith(CCB_VAR_PREFIX)
    ]


def _newchannel(msg: AmiFields, base: tuple[datetime, str, str, str]) -> TelephonyEvent:
    return ChannelCreated(
        *base,
        caller_num=msg.get("CallerIDNum"),
        caller_name=msg.get("CallerIDName"),
        exten=msg.get("Exten"),
        context=msg.get("Context"),
    )


def _newstate(msg: AmiFields, base: tuple[datetime, str, str, str]) -> TelephonyEvent:
    return ChannelStateChanged(
        *base,
        state=msg.get("ChannelStateDesc") or "",
        caller_num=msg.get("CallerIDNum"),
        caller_name=msg.get("CallerIDName"),
    )


def _varset(msg: AmiFields, base: tuple[datetime, str, str, str]) -> TelephonyEvent | None:
    name = msg.get("Variable") or ""
    if not name.startswith(CCB_VAR_PREFIX):
        return None
    return ChannelVariableSet(*base, name=name, value=msg.get("Value") or "")


def _hangup(msg: AmiFields, base: tuple[datetime, str, str, str]) -> TelephonyEvent:
    return ChannelHungUp(*base, cause=msg.get("Cause-txt"))


def _join(msg: AmiFields, base: tuple[datetime, str, str, str]) -> TelephonyEvent:
    return CallerJoinedQueue(
        *base,
        queue=msg.get("Queue") or "",
        caller_num=msg.get("CallerIDNum"),
        caller_name=msg.get("CallerIDName"),
    )


def _called(msg: AmiFields, base: tuple[datetime, str, str, str]) -> TelephonyEvent:
    return AgentRinging(
        *base,
        queue=msg.get("Queue") or "",
        member_interface=msg.get("Interface") or "",
        member_name=msg.get("MemberName"),
    )


def _connect(msg: AmiFields, base: tuple[datetime, str, str, str]) -> TelephonyEvent:
    return AgentAnswered(
        *base,
        queue=msg.get("Queue") or "",
        member_interface=msg.get("Interface") or "",
        member_name=msg.get("MemberName"),
    )


def _complete(msg: AmiFields, base: tuple[datetime, str, str, str]) -> TelephonyEvent:
    return AgentCompleted(*base, queue=msg.get("Queue") or "", reason=msg.get("Reason"))


def _abandon(msg: AmiFields, base: tuple[datetime, str, str, str]) -> TelephonyEvent:
    return CallerAbandoned(*base, queue=msg.get("Queue") or "")


def _show_channel(msg: AmiFields, base: tuple[datetime, str, str, str]) -> TelephonyEvent:
    return ChannelSnapshot(
        *base,
        caller_num=msg.get("CallerIDNum"),
        caller_name=msg.get("CallerIDName"),
        exten=msg.get("Exten"),
        state=msg.get("ChannelStateDesc") or "",
    )


def _queue_entry(msg: AmiFields, base: tuple[datetime, str, str, str]) -> TelephonyEvent:
    return QueueEntrySnapshot(
        *base,
        queue=msg.get("Queue") or "",
        caller_num=msg.get("CallerIDNum"),
        caller_name=msg.get("CallerIDName"),
    )


_Builder = Callable[[AmiFields, tuple[datetime, str, str, str]], TelephonyEvent | None]


def _dial_begin(_msg: AmiFields, _base: tuple[datetime, str, str, str]) -> TelephonyEvent | None:
    """Only the dialling channel's ``channelvars`` (read before the builder). On a real PBX
    (no ``VarSet``) the sticky ring's caller has no other tracked frame between FastAGI
    tagging it and the owner's answer: its ``Newstate`` Up came at ``Answer()``, before."""
    return None


BUILDERS: dict[str, _Builder] = {
    "Newchannel": _newchannel,
    "Newstate": _newstate,
    "DialBegin": _dial_begin,
    "VarSet": _varset,
    "Hangup": _hangup,
    "QueueCallerJoin": _join,
    "AgentCalled": _called,
    "AgentConnect": _connect,
    "AgentComplete": _complete,
    "QueueCallerAbandon": _abandon,
    "CoreShowChannel": _show_channel,
    "QueueEntry": _queue_entry,
}
"""The AMI events the call tracker needs, by name."""


def _transfer_base(msg: AmiFields, now: Now) -> tuple[datetime, str, str, str] | None:
    """Transfer events name channels by role; the transferee's leg survives the transfer."""
    uniqueid = msg.get("TransfereeUniqueid")
    if not uniqueid or msg.get("Result") != "Success":
        return None
    linkedid = msg.get("TransfereeLinkedid") or uniqueid
    at = from_pbx_timestamp(msg.get("Timestamp")) or now()
    return at, linkedid, uniqueid, msg.get("TransfereeChannel") or ""


def _blind_transfer(msg: AmiFields, now: Now) -> TelephonyEvent | None:
    base = _transfer_base(msg, now)
    if base is None or not msg.get("Extension"):
        return None
    return BlindTransferred(
        *base,
        target=msg.get("Extension") or "",
        target_context=msg.get("Context"),
        transferer_channel=msg.get("TransfererChannel"),
    )


def _attended_transfer(msg: AmiFields, now: Now) -> TelephonyEvent | None:
    base = _transfer_base(msg, now)
    if base is None:
        return None
    survivor = base[1]
    # The consultation call is whichever transferer Linkedid is not the survivor's.
    candidates = (
        msg.get("SecondTransfererLinkedid"),
        msg.get("TransferTargetLinkedid"),
        msg.get("OrigTransfererLinkedid"),
    )
    merged = next((c for c in candidates if c and c != survivor), None)
    return AttendedTransferred(
        *base,
        merged_linkedid=merged,
        target_channel=msg.get("TransferTargetChannel"),
        target_caller_num=msg.get("TransferTargetCallerIDNum"),
        transferer_channel=msg.get("OrigTransfererChannel"),
        dest_type=msg.get("DestType") or "Bridge",
    )


TRANSFER_BUILDERS: dict[str, Callable[[AmiFields, Now], TelephonyEvent | None]] = {
    "BlindTransfer": _blind_transfer,
    "AttendedTransfer": _attended_transfer,
}
"""Transfer events carry no plain ``Uniqueid``; they are built from the transferee fields."""

TRACKED_EVENTS = (*BUILDERS, *TRANSFER_BUILDERS)


def normalize(
    msg: AmiFields, now: Now, linkedid_of: Mapping[str, str] | None = None
) -> list[TelephonyEvent]:
    """Return the telephony events one AMI frame carries (none for frames we do not track).

    ``ChanVariable`` headers come first so the tenant is known before the event itself.
    """
    name = msg.event
    transfer = TRANSFER_BUILDERS.get(name) if name else None
    if transfer is not None:
        built = transfer(msg, now)
        return [] if built is None else [built]
    builder = BUILDERS.get(name) if name else None
    if builder is None:
        return []
    if (
        name == "VarSet"
        and not (msg.get("Variable") or "").startswith(CCB_VAR_PREFIX)
        and not msg.has("ChanVariable")
    ):
        return []  # most VarSets are dialplan noise: skip before reading anything else
    base = _base(msg, now, linkedid_of)
    if base is None:
        return []
    out = _channel_vars(msg, now)
    event = builder(msg, base)
    if event is not None:
        out.append(event)
    sticky = _sticky_leg_answered(msg, base)
    if sticky is not None:
        out.append(sticky)
    return out


def sticky_answer(msg: AmiFields, now: Now) -> StickyAgentAnswered | None:
    """The owner agent's leg of a sticky route going up, if *msg* is that (the recording
    feed starts the call's recording on it: no ``AgentConnect`` comes)."""
    # Most Newstate frames are not an answered leg with ccbridge's variables: skip them before
    # the timestamp and ids are parsed (this runs for every Newstate the recordings handler sees).
    state = msg.get("ChannelStateDesc") or msg.get("ChannelState")
    if state != "Up" or not msg.has("ChanVariable"):
        return None
    base = _base(msg, now)
    return None if base is None else _sticky_leg_answered(msg, base)


def _sticky_leg_answered(
    msg: AmiFields, base: tuple[datetime, str, str, str]
) -> StickyAgentAnswered | None:
    """The owner agent's leg of a sticky route is up (``Newstate``, or a resync's
    ``CoreShowChannel``): the leg is the interface the dialplan dialled and carries the
    inherited ``CCB_STICKY_*`` variables. A queue member's leg inherits them too, but is
    another interface, so it never counts here (``AgentConnect`` attributes it)."""
    if msg.event not in ("Newstate", "CoreShowChannel"):
        return None
    state = msg.get("ChannelStateDesc") or msg.get("ChannelState")
    at, linkedid, uniqueid, channel = base
    if state != "Up" or uniqueid == linkedid or not msg.has("ChanVariable"):
        return None
    found = msg.variables()
    agent, interface = found.get(STICKY_AGENT_VAR), found.get(STICKY_INTERFACE_VAR)
    if not agent or not interface or interface_of_channel(channel) != interface:
        return None
    queue = found.get(STICKY_QUEUE_VAR) or None
    return StickyAgentAnswered(
        at, linkedid, uniqueid, channel, agent_no=agent, interface=interface, queue=queue
    )
