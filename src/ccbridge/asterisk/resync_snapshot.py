"""Turn a resync's lists (``CoreShowChannels``, ``QueueStatus``) into whole calls.

A call answered while AMI was down is live at resync with its agent leg in the caller's bridge:
``CoreShowChannel`` names both legs with the call's Linkedid and one ``BridgeId``, and
``QueueStatus`` names the member behind the agent leg's interface. Without this the call's
agent, answer time and skill group would stay unknown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from ccbridge.asterisk.ami.codec import AmiMessage
from ccbridge.asterisk.ami.normalize import duration
from ccbridge.domain.calls.events import AgentAnswered, TelephonyEvent
from ccbridge.domain.calls.tracker import interface_of_channel


@dataclass(frozen=True, slots=True)
class Member:
    """One queue member from ``QueueStatus``: the queue, its name and whether it is in a call."""

    queue: str
    name: str
    interface: str
    in_call: bool


def members_of(queue_items: Iterable[AmiMessage]) -> list[Member]:
    """The ``QueueMember`` items of a ``QueueStatus`` list."""
    return [
        Member(
            queue=msg.get("Queue") or "",
            name=msg.get("Name") or "",
            interface=msg.get("Location") or "",
            in_call=msg.get("InCall") == "1",
        )
        for msg in queue_items
        if msg.event == "QueueMember" and msg.get("Location")
    ]


def member_interfaces(members: Iterable[Member]) -> dict[str, str]:
    """Member name → interface (the queue log names members by name only)."""
    return {m.name: m.interface for m in members if m.name}


def _member_for(interface: str, members: list[Member]) -> Member | None:
    """The member behind an interface; the queue it is in a call for wins."""
    found = [m for m in members if m.interface == interface]
    busy = [m for m in found if m.in_call]
    pool = busy or found
    return pool[0] if pool else None


def agent_legs(
    channels: Iterable[AmiMessage], members: list[Member], now: Callable[[], datetime]
) -> list[TelephonyEvent]:
    """``AgentAnswered`` for every live call bridged to a queue member's channel.

    The answer time is the agent leg's age (``Duration``), the best a snapshot can tell.
    """
    by_bridge: dict[str, list[AmiMessage]] = {}
    for msg in channels:
        bridge = msg.get("BridgeId")
        if bridge:
            by_bridge.setdefault(bridge, []).append(msg)
    out: list[TelephonyEvent] = []
    for legs in by_bridge.values():
        agents = [
            (msg, member)
            for msg in legs
            if not (msg.get("Channel") or "").endswith(";2")  # a Local member's inner half
            and (member := _member_for(interface_of_channel(msg.get("Channel") or ""), members))
        ]
        callers = [msg for msg in legs if all(msg is not a for a, _ in agents)]
        if len(agents) != 1 or not callers:
            continue
        agent_msg, member = agents[0]
        caller = callers[0]
        uniqueid = caller.get("Uniqueid") or ""
        linkedid = caller.get("Linkedid") or uniqueid
        if not uniqueid:
            continue
        out.append(
            AgentAnswered(
                now() - duration(agent_msg.get("Duration")),
                linkedid,
                uniqueid,
                caller.get("Channel") or "",
                queue=member.queue,
                member_interface=member.interface,
                member_name=member.name,
            )
        )
    return out
