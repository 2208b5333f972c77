"""Telephony events normalised from the PBX: what the call tracker understands.

The Asterisk adapter turns AMI frames into these; the domain never sees AMI headers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class ChannelEvent:
    """Fields every channel-scoped event carries."""

    at: datetime
    linkedid: str
    uniqueid: str
    channel: str


@dataclass(frozen=True, slots=True)
class ChannelCreated(ChannelEvent):
    """A new channel (AMI ``Newchannel``); the first one of a call names the caller and DID."""

    caller_num: str | None
    caller_name: str | None
    exten: str | None
    context: str | None


@dataclass(frozen=True, slots=True)
class ChannelStateChanged(ChannelEvent):
    """A channel changed state (AMI ``Newstate``); it may reveal the caller ID late."""

    state: str
    caller_num: str | None
    caller_name: str | None


@dataclass(frozen=True, slots=True)
class ChannelVariableSet(ChannelEvent):
    """A ccbridge channel variable (``CCB_*``) was set, via ``VarSet`` or ``channelvars``."""

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class ChannelHungUp(ChannelEvent):
    """A channel hung up (AMI ``Hangup``)."""

    cause: str | None


@dataclass(frozen=True, slots=True)
class CallerJoinedQueue(ChannelEvent):
    """The caller entered a queue (``QueueCallerJoin``): the skill group is frozen here."""

    queue: str
    caller_num: str | None
    caller_name: str | None


@dataclass(frozen=True, slots=True)
class AgentRinging(ChannelEvent):
    """A queue member is being rung for this call (``AgentCalled``): the screen-pop moment."""

    queue: str
    member_interface: str
    member_name: str | None


@dataclass(frozen=True, slots=True)
class AgentAnswered(ChannelEvent):
    """A queue member answered (``AgentConnect``)."""

    queue: str
    member_interface: str
    member_name: str | None


@dataclass(frozen=True, slots=True)
class StickyAgentAnswered(ChannelEvent):
    """The repeat caller's owner agent answered the routing policy's ``Dial`` before the queue
    (no ``AgentConnect``: the leg is not a queue member's). Base fields are the agent's leg;
    the dialplan hands it ``CCB_STICKY_AGENT``/``_INTERFACE``/``_QUEUE`` by inheritance."""

    agent_no: str
    interface: str
    queue: str | None


@dataclass(frozen=True, slots=True)
class AgentCompleted(ChannelEvent):
    """The agent conversation ended (``AgentComplete``)."""

    queue: str
    reason: str | None


@dataclass(frozen=True, slots=True)
class CallerAbandoned(ChannelEvent):
    """The caller hung up while waiting in a queue (``QueueCallerAbandon``)."""

    queue: str


@dataclass(frozen=True, slots=True)
class ChannelSnapshot(ChannelEvent):
    """A live channel reported by a resync (``CoreShowChannel``)."""

    caller_num: str | None
    caller_name: str | None
    exten: str | None
    state: str


@dataclass(frozen=True, slots=True)
class QueueEntrySnapshot(ChannelEvent):
    """A caller waiting in a queue, reported by a resync (``QueueEntry``)."""

    queue: str
    caller_num: str | None
    caller_name: str | None


@dataclass(frozen=True, slots=True)
class BlindTransferred(ChannelEvent):
    """The call was blind-transferred (AMI ``BlindTransfer``); base fields are the transferee's.

    ``target`` is the dialled extension; it becomes the next agent when a leg of that
    extension answers (or when the call reaches a queue again).
    """

    target: str
    target_context: str | None
    transferer_channel: str | None


@dataclass(frozen=True, slots=True)
class AttendedTransferred(ChannelEvent):
    """An attended transfer completed (AMI ``AttendedTransfer``, ``Result: Success``).

    Base fields are the transferee's (the surviving conversation). ``merged_linkedid`` is the
    consultation call's Linkedid, which Asterisk folds into the oldest Linkedid once its
    channels share the caller's bridge. ``dest_type`` is Asterisk's ``DestType``:
    ``Bridge``, ``Link`` (Local channels join the two bridges), ``App`` or ``Threeway``.
    """

    merged_linkedid: str | None
    target_channel: str | None
    target_caller_num: str | None
    transferer_channel: str | None
    dest_type: str


TransferEvent = BlindTransferred | AttendedTransferred


TelephonyEvent = (
    ChannelCreated
    | ChannelStateChanged
    | ChannelVariableSet
    | ChannelHungUp
    | CallerJoinedQueue
    | AgentRinging
    | AgentAnswered
    | StickyAgentAnswered
    | AgentCompleted
    | CallerAbandoned
    | ChannelSnapshot
    | QueueEntrySnapshot
    | BlindTransferred
    | AttendedTransferred
)
