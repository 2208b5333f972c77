"""What the PBX should have (ccbridge's queues and signed-in members) versus what it reports.

After every queue reload ccbridge reads ``QueueStatus`` and compares: a queue it owns that
the PBX does not report means the PBX does not include the generated ``queues.conf`` (or
includes an old copy); such a mismatch is a readiness failure naming the queue. Queues the PBX
has beyond ccbridge's (the admin's own) are not ccbridge's business.

Pure: no I/O, no clock, no logging.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

Member = tuple[str, str]
"""``(queue, interface)`` of one queue member."""


@dataclass(frozen=True, slots=True)
class PbxInventory:
    """The queues and members one ``QueueStatus`` reported."""

    queues: frozenset[str]
    members: frozenset[Member]


@dataclass(frozen=True, slots=True)
class PbxConfigReport:
    """The outcome of one comparison; ``ok`` when nothing ccbridge expects is missing."""

    expected_queues: int
    missing_queues: tuple[str, ...]
    missing_members: tuple[Member, ...]

    @property
    def ok(self) -> bool:
        """True when the PBX has every expected queue and member."""
        return not self.missing_queues and not self.missing_members

    def summary(self) -> str:
        """One sentence naming what is missing (for logs and problem details)."""
        parts = []
        if self.missing_queues:
            parts.append("queue(s) " + ", ".join(self.missing_queues))
        if self.missing_members:
            parts.append("member(s) " + ", ".join(f"{q}/{i}" for q, i in self.missing_members))
        if not parts:
            return f"the PBX has all {self.expected_queues} queue(s) ccbridge owns"
        return "the PBX does not report " + "; ".join(parts)


def compare(
    expected_queues: Iterable[str],
    expected_members: Iterable[Member],
    seen: PbxInventory,
    *,
    previously_missing: Iterable[Member] = (),
) -> PbxConfigReport:
    """Compare what ccbridge expects with what the PBX reported.

    A member whose queue is missing is reported through its queue only. A member missing from
    a queue the PBX has counts only when it was already missing at the previous comparison
    (``previously_missing``): a seat signed in a moment ago may not have been added yet, and
    the reconciler repairs a member it finds missing within one cycle.
    """
    queues = sorted(set(expected_queues))
    missing_queues = tuple(q for q in queues if q not in seen.queues)
    gone = set(missing_queues)
    earlier = set(previously_missing)
    missing_members = tuple(
        m
        for m in sorted(set(expected_members))
        if m[0] not in gone and m not in seen.members and m in earlier
    )
    return PbxConfigReport(len(queues), missing_queues, missing_members)


def absent_members(expected_members: Iterable[Member], seen: PbxInventory) -> frozenset[Member]:
    """Members ccbridge expects that the PBX did not report (the next comparison's baseline)."""
    return frozenset(m for m in expected_members if m not in seen.members)
