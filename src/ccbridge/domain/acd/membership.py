"""Queue membership as ccbridge wants it versus as the PBX has it, and the plan to converge.

A skill group is an Asterisk queue named ``<tenant>-<skill group>``. The database is the truth
for who is signed in (a member) and paused (with which reason); :func:`plan_repairs` compares
that desired state with a ``QueueStatus`` snapshot and returns the repairs, in a deterministic
order, that make the PBX match. Queues ccbridge does not own are never touched.

Pure: no I/O, no clock, no logging.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass

NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]+")
MAX_QUEUE_NAME = 80
"""app_queue keeps names in a string field; 80 keeps them readable in CLI output and logs."""

MIN_SKILL_LEVEL = 1
MAX_SKILL_LEVEL = 10
SIGNING_IN_REASON = "signing-in"
"""Pause reason of a member between its ``QueueAdd`` and its unpause during sign-in."""


def _check_name(what: str, value: str) -> str:
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise ValueError(f"{what} must match ^[A-Za-z0-9_-]+$, got {value!r}")
    return value


def queue_name(tenant: str, skill_group: str) -> str:
    """Return the Asterisk queue of a tenant's skill group, ``<tenant>-<skill group>``.

    Both parts must match ``^[A-Za-z0-9_-]+$`` (no spaces, brackets, dots or CR/LF that could
    break a queues.conf section header or an AMI header); anything else raises ValueError.
    """
    _check_name("tenant", tenant)
    _check_name("skill group", skill_group)
    name = f"{tenant}-{skill_group}"
    if len(name) > MAX_QUEUE_NAME:
        raise ValueError(f"queue name longer than {MAX_QUEUE_NAME} characters: {name!r}")
    return name


def check_queue_name(name: str) -> str:
    """Validate a complete queue name (same alphabet and length as :func:`queue_name`)."""
    _check_name("queue name", name)
    if len(name) > MAX_QUEUE_NAME:
        raise ValueError(f"queue name longer than {MAX_QUEUE_NAME} characters: {name!r}")
    return name


def penalty_for_level(level: int) -> int:
    """Map a skill level (1 lowest .. 10 highest) to an app_queue penalty (0 rings first).

    Level 10 gives penalty 0 and level 1 gives penalty 9, so stronger agents ring first.
    """
    if not MIN_SKILL_LEVEL <= level <= MAX_SKILL_LEVEL:
        raise ValueError(f"skill level must be {MIN_SKILL_LEVEL}..{MAX_SKILL_LEVEL}, got {level}")
    return MAX_SKILL_LEVEL - level


@dataclass(frozen=True, slots=True)
class QueueMemberSpec:
    """One queue membership, desired (from the DB) or actual (from ``QueueStatus``).

    ``reason`` only means something while paused; an unpaused member's reason is always ``""``
    (Asterisk clears ``PausedReason`` on unpause, so the two sides compare equal).
    """

    queue: str
    interface: str
    member_name: str
    penalty: int = 0
    paused: bool = False
    reason: str = ""

    def __post_init__(self) -> None:
        """Reject an empty queue/interface or a negative penalty; drop an unpaused reason."""
        if not self.queue or not self.interface:
            raise ValueError("a queue member needs a queue and an interface")
        if self.penalty < 0:
            raise ValueError(f"penalty must be >= 0, got {self.penalty}")
        if not self.paused and self.reason:
            object.__setattr__(self, "reason", "")

    @property
    def key(self) -> tuple[str, str]:
        """The identity of a membership: (queue, interface)."""
        return (self.queue, self.interface)


class DriftKind(enum.StrEnum):
    """How the PBX differs from the desired state."""

    MISSING = "missing"
    """Desired but not a member (e.g. lost in a PBX restart, removed from the CLI)."""
    PHANTOM = "phantom"
    """A member of a managed queue that nobody should be (e.g. signed out while we were away)."""
    WRONG_PAUSE = "wrong_pause"
    """Paused when it should not be, or the other way round, or with the wrong reason."""
    WRONG_PENALTY = "wrong_penalty"
    """Penalty differs from the one the skill level gives."""


@dataclass(frozen=True, slots=True)
class AddMember:
    """Add a missing member (executed paused first, then set to the spec's pause state)."""

    spec: QueueMemberSpec

    @property
    def queue(self) -> str:
        """The queue to add to."""
        return self.spec.queue

    @property
    def interface(self) -> str:
        """The member's interface."""
        return self.spec.interface

    @property
    def kind(self) -> DriftKind:
        """Always :attr:`DriftKind.MISSING`."""
        return DriftKind.MISSING


@dataclass(frozen=True, slots=True)
class RemoveMember:
    """Remove a phantom member from a managed queue."""

    queue: str
    interface: str

    @property
    def kind(self) -> DriftKind:
        """Always :attr:`DriftKind.PHANTOM`."""
        return DriftKind.PHANTOM


@dataclass(frozen=True, slots=True)
class SetPaused:
    """Pause (with ``reason``) or unpause a member in one queue."""

    queue: str
    interface: str
    paused: bool
    reason: str = ""

    @property
    def kind(self) -> DriftKind:
        """Always :attr:`DriftKind.WRONG_PAUSE`."""
        return DriftKind.WRONG_PAUSE


@dataclass(frozen=True, slots=True)
class SetPenalty:
    """Change a member's penalty in one queue."""

    queue: str
    interface: str
    penalty: int

    @property
    def kind(self) -> DriftKind:
        """Always :attr:`DriftKind.WRONG_PENALTY`."""
        return DriftKind.WRONG_PENALTY


Repair = AddMember | RemoveMember | SetPaused | SetPenalty

_RANK: dict[type[object], int] = {RemoveMember: 0, AddMember: 1, SetPenalty: 2, SetPaused: 3}
"""Per member: penalty is fixed before an unpause, so it never rings with the wrong one."""


def _order(repair: Repair) -> tuple[str, str, int]:
    return (repair.queue, repair.interface, _RANK[type(repair)])


def index_members(members: Iterable[QueueMemberSpec]) -> dict[tuple[str, str], QueueMemberSpec]:
    """Index memberships by (queue, interface); a duplicate key raises ValueError."""
    out: dict[tuple[str, str], QueueMemberSpec] = {}
    for member in members:
        if member.key in out:
            raise ValueError(f"duplicate membership {member.key!r}")
        out[member.key] = member
    return out


def plan_repairs(
    desired: Iterable[QueueMemberSpec],
    actual: Iterable[QueueMemberSpec],
    managed_queues: Collection[str],
) -> list[Repair]:
    """Return the repairs that turn ``actual`` into ``desired`` on the managed queues.

    Only queues in ``managed_queues`` are considered on either side: a member of another queue
    is never removed, and a desired member of a queue ccbridge does not own is ignored. The
    member name is not compared (changing it needs a remove and re-add, which would drop the
    agent's call statistics). Order: by queue, interface, then remove, add, penalty, pause.
    ``desired`` must not hold the same (queue, interface) twice (ValueError).
    """
    managed = frozenset(managed_queues)
    want = {k: m for k, m in index_members(desired).items() if m.queue in managed}
    have: dict[tuple[str, str], QueueMemberSpec] = {}
    for member in actual:
        if member.queue in managed:
            have[member.key] = member
    repairs: list[Repair] = []
    for key, member in have.items():
        if key not in want:
            repairs.append(RemoveMember(member.queue, member.interface))
    for key, target in want.items():
        current = have.get(key)
        if current is None:
            repairs.append(AddMember(target))
            continue
        if current.penalty != target.penalty:
            repairs.append(SetPenalty(target.queue, target.interface, target.penalty))
        if current.paused != target.paused or current.reason != target.reason:
            repairs.append(SetPaused(target.queue, target.interface, target.paused, target.reason))
    repairs.sort(key=_order)
    return repairs
