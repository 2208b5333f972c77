"""Pure state of the fake Asterisk: channels, queues, members, callers and id allocation.

Nothing here does I/O; the AMI server and the call simulator mutate it and turn the
changes into frames, so the same state answers ``QueueStatus`` and drives calls.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

UNKNOWN = "<unknown>"

CHANNEL_STATE_DESC: dict[int, str] = {
    0: "Down",
    1: "Rsrvd",
    2: "OffHook",
    3: "Dialing",
    4: "Ring",
    5: "Ringing",
    6: "Up",
    7: "Busy",
    8: "Dialing Offhook",
    9: "Pre-ring",
    10: "Unknown",
}
"""ChannelState number to ChannelStateDesc text, as Asterisk prints them."""

STATE_DOWN = 0
STATE_RING = 4
STATE_RINGING = 5
STATE_UP = 6

DEVICE_NOT_INUSE = 1
DEVICE_INUSE = 2
"""Queue member ``Status`` is the device state (1 not in use, 2 in use)."""


class PbxError(Exception):
    """A model operation Asterisk would refuse; the message is Asterisk's own text."""


class NoSuchQueueError(PbxError):
    """The queue is not configured."""


class MemberExistsError(PbxError):
    """``QueueAdd`` of an interface already in the queue."""


class NoSuchMemberError(PbxError):
    """The interface is not a member of the queue."""


class MemberNotDynamicError(PbxError):
    """``QueueRemove`` of a static (queues.conf) member."""


class IdAllocator:
    """Hands out ids the way Asterisk does: ``<epoch>.<n>`` uniqueids and hex channel suffixes."""

    def __init__(
        self, clock: Callable[[], float], first_seq: int = 1, system_name: str = ""
    ) -> None:
        """``system_name`` is asterisk.conf's ``systemname``: the prefix of every uniqueid."""
        self._clock = clock
        self._seq = first_seq
        self._prefix = f"{system_name}-" if system_name else ""
        self._suffix: dict[str, int] = {}

    def uniqueid(self) -> str:
        """Return the next uniqueid, e.g. ``1795433102.18`` (``pbx-b-1795433102.18`` with a
        system name)."""
        value = f"{self._prefix}{int(self._clock())}.{self._seq}"
        self._seq += 1
        return value

    def suffix(self, tech: str) -> str:
        """Return the next 8-hex-digit channel suffix for a technology (``PJSIP``, ``Local``)."""
        n = self._suffix.get(tech, 0) + 1
        self._suffix[tech] = n
        return f"{n:08x}"


@dataclass(slots=True)
class Channel:
    """One channel with the snapshot fields every channel event repeats."""

    name: str
    uniqueid: str
    linkedid: str
    state: int = STATE_DOWN
    caller_num: str = UNKNOWN
    caller_name: str = UNKNOWN
    connected_num: str = UNKNOWN
    connected_name: str = UNKNOWN
    language: str = "en"
    accountcode: str = ""
    context: str = ""
    exten: str = ""
    priority: int = 1
    application: str = ""
    app_data: str = ""
    created_at: float = 0.0
    bridge_id: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    reported_vars: tuple[str, ...] = ()
    """manager.conf ``channelvars``: every snapshot of this channel carries them."""
    recording_file: str | None = None
    recording_muted: bool = False

    @property
    def state_desc(self) -> str:
        """The ChannelStateDesc text for the current state."""
        return CHANNEL_STATE_DESC.get(self.state, "Unknown")

    @property
    def tech(self) -> str:
        """The channel technology (``PJSIP``, ``Local``)."""
        return self.name.split("/", 1)[0]


@dataclass(slots=True)
class QueueMember:
    """A queue member as app_queue keeps it."""

    interface: str
    member_name: str
    state_interface: str
    membership: str = "dynamic"
    penalty: int = 0
    calls_taken: int = 0
    last_call: int = 0
    last_pause: int = 0
    login_time: int = 0
    in_call: bool = False
    status: int = DEVICE_NOT_INUSE
    paused: bool = False
    paused_reason: str = ""
    ringinuse: bool = False
    wrapuptime: int = 0
    ringing: bool = False

    @property
    def available(self) -> bool:
        """Whether app_queue would ring this member now."""
        return not self.paused and self.status == DEVICE_NOT_INUSE and not self.ringing

    @property
    def extension(self) -> str:
        """The dialled extension of a ``Local/2001@agents`` interface."""
        body = self.interface.split("/", 1)[-1]
        return body.split("@", 1)[0]

    @property
    def context(self) -> str:
        """The dialplan context a ring of this member runs in: a ``Local/…@<context>``
        interface's own (e.g. ``ccbridge-agents``), else ``agents``."""
        tech, _, body = self.interface.partition("/")
        _, at, context = body.partition("@")
        return context if tech == "Local" and at and context else "agents"


@dataclass(slots=True)
class QueueEntry:
    """A caller waiting in a queue."""

    channel: str
    uniqueid: str
    joined_at: float
    original_position: int


@dataclass(slots=True)
class Queue:
    """One queue with its members, waiting callers and statistics."""

    name: str
    strategy: str = "rrmemory"
    max_len: int = 0
    service_level: int = 60
    weight: int = 0
    members: dict[str, QueueMember] = field(default_factory=dict)
    entries: list[QueueEntry] = field(default_factory=list)
    completed: int = 0
    abandoned: int = 0
    completed_in_sl: int = 0
    holdtime: int = 0
    talktime: int = 0
    rr_last: str | None = None
    monitor_format: str = ""
    """``monitor-format``: when set, a member's answer starts MixMonitor on the caller."""

    def position_of(self, uniqueid: str) -> int:
        """1-based position of a waiting caller, or 0 when not waiting."""
        for i, entry in enumerate(self.entries, start=1):
            if entry.uniqueid == uniqueid:
                return i
        return 0

    def record_completed(self, hold: int, talk: int) -> None:
        """Update the rolling averages the way app_queue does ((old*3 + new) / 4)."""
        self.completed += 1
        if hold <= self.service_level:
            self.completed_in_sl += 1
        self.holdtime = (self.holdtime * 3 + hold) // 4
        self.talktime = (self.talktime * 3 + talk) // 4

    @property
    def service_level_perf(self) -> str:
        """ServicelevelPerf as printed (one decimal)."""
        if not self.completed:
            return "0.0"
        return f"{100.0 * self.completed_in_sl / self.completed:.1f}"

    def pick_member(self) -> QueueMember | None:
        """Choose the next free member by the queue strategy (ringall: lowest penalty first)."""
        free = [m for m in self.members.values() if m.available]
        if not free:
            return None
        if self.strategy == "rrmemory":
            order = list(self.members)
            start = order.index(self.rr_last) + 1 if self.rr_last in order else 0
            rotated = order[start:] + order[:start]
            for iface in rotated:
                member = self.members[iface]
                if member.available:
                    self.rr_last = iface
                    return member
            return None
        if self.strategy == "random":
            return free[0]
        return min(free, key=lambda m: m.penalty)


@dataclass(slots=True)
class MemberSpec:
    """Static configuration of one member (a queues.conf ``member =>`` line)."""

    interface: str
    member_name: str
    penalty: int = 0


@dataclass(slots=True)
class QueueSpec:
    """Static configuration of one queue."""

    name: str
    strategy: str = "rrmemory"
    members: list[MemberSpec] = field(default_factory=list)
    monitor_format: str = ""
    """queues.conf ``monitor-format``: app_queue records each answered call (MixMonitor)."""


class PbxModel:
    """All mutable PBX state, shared by the AMI server and the call simulator."""

    def __init__(
        self,
        clock: Callable[[], float],
        queues: list[QueueSpec] | None = None,
        config: Callable[[], list[QueueSpec]] | None = None,
        channelvars: Sequence[str] = (),
        system_name: str = "",
    ) -> None:
        self.clock = clock
        self.channelvars = tuple(channelvars)
        """manager.conf ``channelvars``: reported as ``ChanVariable`` on every channel event."""
        self.system_name = system_name
        """asterisk.conf ``systemname`` (``CoreSettings`` ``SystemName``, the uniqueid prefix)."""
        self.ids = IdAllocator(clock, system_name=system_name)
        self.channels: dict[str, Channel] = {}
        self.queues: dict[str, Queue] = {}
        self.devices: dict[str, str] = {}
        self.started_at = clock()
        self._specs = list(queues or [])
        self._config = config
        """Queues read from configuration files (``queues.conf``), re-read on a reload."""
        self._configured: set[str] = set()
        self.load_config()

    def load_config(self) -> None:
        """(Re)load queues and static members, as at Asterisk start."""
        self.queues = {}
        for spec in self._specs:
            self.queues[spec.name] = self._new_queue(spec)
        self._configured = set()
        for spec in self._config() if self._config else []:
            if spec.name not in self.queues:  # a built-in queue of that name was read first
                self.queues[spec.name] = self._new_queue(spec)
                self._configured.add(spec.name)
        self.sync_devices()

    def reload_config(self) -> None:
        """``QueueReload`` (parameters): new queues appear, changed strategies apply, queues
        gone from the file are removed once no caller waits; members are left alone."""
        if self._config is None:
            return
        builtin = {spec.name for spec in self._specs}
        specs = {spec.name: spec for spec in self._config() if spec.name not in builtin}
        for name in self._configured - set(specs):
            if name in self.queues and not self.queues[name].entries:
                del self.queues[name]
        for name, spec in specs.items():
            if name in self.queues:
                self.queues[name].strategy = spec.strategy
                self.queues[name].monitor_format = spec.monitor_format
            else:
                self.queues[name] = self._new_queue(spec)
        self._configured = set(specs)
        self.sync_devices()

    def _new_queue(self, spec: QueueSpec) -> Queue:
        now = int(self.clock())
        queue = Queue(name=spec.name, strategy=spec.strategy, monitor_format=spec.monitor_format)
        for m in spec.members:
            queue.members[m.interface] = QueueMember(
                interface=m.interface,
                member_name=m.member_name,
                state_interface=m.interface,
                membership="static",
                penalty=m.penalty,
                login_time=now,
            )
        return queue

    def sync_devices(self) -> None:
        """Recompute queue device states silently (as they stand after a config load)."""
        for queue in self.queues.values():
            free = any(
                not m.paused and m.status == DEVICE_NOT_INUSE for m in queue.members.values()
            )
            self.devices[f"Queue:{queue.name}_avail"] = "NOT_INUSE" if free else "INUSE"
            for m in queue.members.values():
                self.devices[f"Queue:{queue.name}_pause_{m.interface}"] = (
                    "INUSE" if m.paused else "NOT_INUSE"
                )

    def restart(self, lose_members: bool = True) -> None:
        """Forget channels and callers, and dynamic members unless persistent."""
        self.channels.clear()
        self.devices.clear()
        self.started_at = self.clock()
        if lose_members:
            self.load_config()
            return
        for queue in self.queues.values():
            queue.entries.clear()
            for member in queue.members.values():
                member.in_call = False
                member.ringing = False
                member.status = DEVICE_NOT_INUSE
        self.sync_devices()

    def uptime(self) -> int:
        """Seconds since (re)start, for ``FullyBooted``."""
        return int(self.clock() - self.started_at)

    def queue(self, name: str) -> Queue:
        """Return a queue or raise :class:`NoSuchQueueError`."""
        try:
            return self.queues[name]
        except KeyError:
            raise NoSuchQueueError(name) from None

    def add_member(
        self,
        queue_name: str,
        interface: str,
        member_name: str = "",
        state_interface: str = "",
        penalty: int = 0,
        paused: bool = False,
        reason: str = "",
    ) -> QueueMember:
        """Add a dynamic member (``QueueAdd``)."""
        queue = self.queue(queue_name)
        if interface in queue.members:
            raise MemberExistsError(interface)
        now = int(self.clock())
        member = QueueMember(
            interface=interface,
            member_name=member_name or interface,
            state_interface=state_interface or interface,
            penalty=penalty,
            login_time=now,
            paused=paused,
            paused_reason=reason if paused else "",
            last_pause=now if paused else 0,
        )
        busy = self._member_busy(interface)
        if busy:
            member.status = DEVICE_INUSE
        queue.members[interface] = member
        return member

    def _member_busy(self, interface: str) -> bool:
        for queue in self.queues.values():
            other = queue.members.get(interface)
            if other is not None and other.status == DEVICE_INUSE:
                return True
        return False

    def remove_member(self, queue_name: str, interface: str) -> QueueMember:
        """Remove a dynamic member (``QueueRemove``)."""
        queue = self.queue(queue_name)
        member = queue.members.get(interface)
        if member is None:
            raise NoSuchMemberError(interface)
        if member.membership == "static":
            raise MemberNotDynamicError(interface)
        del queue.members[interface]
        return member

    def pause_member(
        self, interface: str, paused: bool, reason: str = "", queue_name: str | None = None
    ) -> list[tuple[Queue, QueueMember]]:
        """Pause or unpause in one queue, or every queue when ``queue_name`` is empty."""
        queues = [self.queue(queue_name)] if queue_name else list(self.queues.values())
        changed: list[tuple[Queue, QueueMember]] = []
        now = int(self.clock())
        for queue in queues:
            member = queue.members.get(interface)
            if member is None:
                continue
            member.paused = paused
            member.paused_reason = reason if paused else ""
            member.last_pause = now if paused else member.last_pause
            changed.append((queue, member))
        if not changed:
            raise NoSuchMemberError(interface)
        return changed

    def members_of(self, interface: str) -> list[tuple[Queue, QueueMember]]:
        """Every (queue, member) pair for an interface."""
        return [(q, q.members[interface]) for q in self.queues.values() if interface in q.members]

    def set_device(self, device: str, state: str) -> bool:
        """Record a device state; return True when it changed (then Asterisk emits an event)."""
        if self.devices.get(device) == state:
            return False
        self.devices[device] = state
        return True

    def new_channel(
        self,
        name: str,
        *,
        linkedid: str | None = None,
        state: int = STATE_DOWN,
        context: str = "",
        exten: str = "",
        caller_num: str = UNKNOWN,
        caller_name: str = UNKNOWN,
    ) -> Channel:
        """Create a channel with fresh ids; ``linkedid`` defaults to its own uniqueid."""
        uid = self.ids.uniqueid()
        channel = Channel(
            name=name,
            uniqueid=uid,
            linkedid=linkedid or uid,
            state=state,
            context=context,
            exten=exten,
            caller_num=caller_num,
            caller_name=caller_name,
            created_at=self.clock(),
            reported_vars=self.channelvars,
        )
        self.channels[name] = channel
        return channel

    def local_pair(
        self, exten: str, context: str, linkedid: str | None = None
    ) -> tuple[Channel, Channel]:
        """Create the ``;1``/``;2`` halves of a Local channel."""
        base = f"Local/{exten}@{context}-{self.ids.suffix('Local')}"
        one = self.new_channel(f"{base};1", linkedid=linkedid, context=context, exten=exten)
        two = self.new_channel(
            f"{base};2", linkedid=one.linkedid, state=STATE_RING, context=context, exten=exten
        )
        return one, two

    def find_channel(self, name: str) -> Channel | None:
        """Return a live channel by name."""
        return self.channels.get(name)

    def bridged_with(self, ch: Channel) -> list[Channel]:
        """The other channels in *ch*'s bridge (none when it is in no bridge)."""
        if not ch.bridge_id:
            return []
        return [c for c in self.channels.values() if c.bridge_id == ch.bridge_id and c is not ch]

    def drop_channel(self, name: str) -> Channel | None:
        """Forget a hung-up channel."""
        return self.channels.pop(name, None)
