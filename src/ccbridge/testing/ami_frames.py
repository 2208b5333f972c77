"""Field lists of Asterisk 22 AMI events, in the exact order the real PBX writes them.

Kept apart from the server so the simulator and the AMI actions build identical frames.
Orders come from tests/fixtures/asterisk-captures.
"""

from __future__ import annotations

from datetime import UTC, datetime

from ccbridge.testing.pbx_model import Channel, Queue, QueueEntry, QueueMember

Fields = list[tuple[str, str]]

PRIV_CALL = "call,all"
PRIV_AGENT = "agent,all"
PRIV_DIALPLAN = "dialplan,all"
PRIV_SYSTEM = "system,all"
PRIV_SECURITY = "security,all"

BRIDGE_FIXED: Fields = [
    ("BridgeType", "basic"),
    ("BridgeTechnology", "simple_bridge"),
    ("BridgeCreator", "<unknown>"),
    ("BridgeName", "<unknown>"),
]


def timestamp(now: float) -> str:
    """``Timestamp`` header value: epoch seconds with six decimals."""
    return f"{now:.6f}"


def event_tv(now: float) -> str:
    """``EventTV``/``SessionTV`` value, e.g. ``2026-11-23T11:25:01.582+0000``."""
    dt = datetime.fromtimestamp(now, UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}+0000"


CHANNELVARS = ("CCB_TENANT", "CCB_DID", "CCB_QUEUE")
"""``manager.conf`` ``channelvars`` as asterisk/manager.d/ccbridge.conf sets it."""


def channel_fields(
    ch: Channel, prefix: str = "", channelvars: tuple[str, ...] = CHANNELVARS
) -> Fields:
    """The channel snapshot block (``Channel`` … ``Linkedid``), optionally ``Dest``-prefixed,
    then one ``ChanVariable: NAME=value`` per ``channelvars`` entry (empty when unset), as
    Asterisk 22 appends them (tests/fixtures/ccbridge-captures/attended-transfer-atxfer.txt)."""
    return [
        (f"{prefix}Channel", ch.name),
        (f"{prefix}ChannelState", str(ch.state)),
        (f"{prefix}ChannelStateDesc", ch.state_desc),
        (f"{prefix}CallerIDNum", ch.caller_num),
        (f"{prefix}CallerIDName", ch.caller_name),
        (f"{prefix}ConnectedLineNum", ch.connected_num),
        (f"{prefix}ConnectedLineName", ch.connected_name),
        (f"{prefix}Language", ch.language),
        (f"{prefix}AccountCode", ch.accountcode),
        (f"{prefix}Context", ch.context),
        (f"{prefix}Exten", ch.exten),
        (f"{prefix}Priority", str(ch.priority)),
        (f"{prefix}Uniqueid", ch.uniqueid),
        (f"{prefix}Linkedid", ch.linkedid),
        *(
            (f"{prefix}ChanVariable", f"{name}={ch.variables.get(name, '')}")
            for name in channelvars
        ),
    ]


def member_event_fields(queue: Queue, m: QueueMember) -> Fields:
    """Body of ``QueueMemberAdded/Removed/Pause/Status`` events."""
    return [
        ("Queue", queue.name),
        ("MemberName", m.member_name),
        ("Interface", m.interface),
        ("StateInterface", m.state_interface),
        ("Membership", m.membership),
        ("Penalty", str(m.penalty)),
        ("CallsTaken", str(m.calls_taken)),
        ("LastCall", str(m.last_call)),
        ("LastPause", str(m.last_pause)),
        ("LoginTime", str(m.login_time)),
        ("InCall", "1" if m.in_call else "0"),
        ("Status", str(m.status)),
        ("Paused", "1" if m.paused else "0"),
        ("PausedReason", m.paused_reason),
        ("Ringinuse", "1" if m.ringinuse else "0"),
        ("Wrapuptime", str(m.wrapuptime)),
    ]


def queue_member_item(queue: Queue, m: QueueMember) -> Fields:
    """A ``QueueMember`` list item of ``QueueStatus`` (member is ``Name``/``Location``)."""
    return [
        ("Event", "QueueMember"),
        ("Queue", queue.name),
        ("Name", m.member_name),
        ("Location", m.interface),
        ("StateInterface", m.state_interface),
        ("Membership", m.membership),
        ("Penalty", str(m.penalty)),
        ("CallsTaken", str(m.calls_taken)),
        ("LastCall", str(m.last_call)),
        ("LastPause", str(m.last_pause)),
        ("LoginTime", str(m.login_time)),
        ("InCall", "1" if m.in_call else "0"),
        ("Status", str(m.status)),
        ("Paused", "1" if m.paused else "0"),
        ("PausedReason", m.paused_reason),
        ("Wrapuptime", str(m.wrapuptime)),
    ]


def queue_params_item(queue: Queue) -> Fields:
    """A ``QueueParams`` list item of ``QueueStatus``."""
    return [
        ("Event", "QueueParams"),
        ("Queue", queue.name),
        ("Max", str(queue.max_len)),
        ("Strategy", queue.strategy),
        ("Calls", str(len(queue.entries))),
        ("Holdtime", str(queue.holdtime)),
        ("TalkTime", str(queue.talktime)),
        ("Completed", str(queue.completed)),
        ("Abandoned", str(queue.abandoned)),
        ("ServiceLevel", str(queue.service_level)),
        ("ServicelevelPerf", queue.service_level_perf),
        ("ServicelevelPerf2", queue.service_level_perf),
        ("Weight", str(queue.weight)),
    ]


def queue_entry_item(
    queue: Queue, pos: int, entry: QueueEntry, ch: Channel | None, now: float
) -> Fields:
    """A ``QueueEntry`` list item of ``QueueStatus`` (a waiting caller)."""
    return [
        ("Event", "QueueEntry"),
        ("Queue", queue.name),
        ("Position", str(pos)),
        ("Channel", entry.channel),
        ("Uniqueid", entry.uniqueid),
        ("CallerIDNum", ch.caller_num if ch else "<unknown>"),
        ("CallerIDName", ch.caller_name if ch else "<unknown>"),
        ("ConnectedLineNum", ch.connected_num if ch else "<unknown>"),
        ("ConnectedLineName", ch.connected_name if ch else "<unknown>"),
        ("Wait", str(int(now - entry.joined_at))),
        ("Priority", "0"),
    ]


def queue_summary_item(queue: Queue, now: float) -> Fields:
    """A ``QueueSummary`` list item."""
    members = queue.members.values()
    logged_in = sum(1 for m in members if m.status not in (4, 5))
    available = sum(1 for m in members if not m.paused and m.status in (0, 1))
    longest = max((int(now - e.joined_at) for e in queue.entries), default=0)
    return [
        ("Event", "QueueSummary"),
        ("Queue", queue.name),
        ("LoggedIn", str(logged_in)),
        ("Available", str(available)),
        ("Callers", str(len(queue.entries))),
        ("HoldTime", str(queue.holdtime)),
        ("TalkTime", str(queue.talktime)),
        ("LongestHoldTime", str(longest)),
    ]


def duration(seconds: float) -> str:
    """``HH:MM:SS`` as in ``CoreShowChannel.Duration``."""
    s = max(0, int(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def bridge_fields(bridge_id: str, count: int) -> Fields:
    """The bridge snapshot block of ``Bridge*`` events."""
    return [
        ("BridgeUniqueid", bridge_id),
        *BRIDGE_FIXED,
        ("BridgeNumChannels", str(count)),
        ("BridgeVideoSourceMode", "none"),
    ]
