"""A node's term as a PBX's owner, judged on its own monotonic clock (the fence).

The lease row in the database expires ``ttl`` after the database's clock at the renewal; the
node counts its term from the moment it *sent* that renewal, which is earlier, and stops acting
``margin`` before even that. So the node's fence closes before any other node can see the lease
expired and take over, without trusting the two machines' wall clocks to agree (only their
rates: a drift of far less than ``margin`` over one ``ttl``).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class LeaseTiming:
    """How long a lease lasts, how often its owner renews it, and the fence's safety margin."""

    ttl: float
    renew_every: float
    margin: float

    def __post_init__(self) -> None:
        if not 0 < self.margin < self.ttl:
            raise ValueError("the fence margin must be positive and shorter than the lease")
        if not 0 < self.renew_every <= (self.ttl - self.margin) / 2:
            raise ValueError(
                "renew at least twice within the fenced lease (renew_every <= (ttl - margin) / 2)"
                ", so one lost renewal does not cost the term"
            )

    def worst_takeover(self) -> float:
        """Seconds from the owner's last renewal to the latest moment a standby takes over."""
        return self.ttl + self.renew_every


@dataclass(slots=True)
class OwnershipTerm:
    """The current term: its fencing token (``epoch``) and until when the node may act."""

    timing: LeaseTiming
    epoch: int | None = None
    acts_until: float = 0.0

    def granted(self, epoch: int, asked_at: float) -> None:
        """The lease was won with a new ``epoch`` by a request sent at ``asked_at``."""
        self.epoch = epoch
        self.acts_until = asked_at + self.timing.ttl - self.timing.margin

    def renewed(self, asked_at: float) -> None:
        """A renewal sent at ``asked_at`` was confirmed by the database."""
        if self.epoch is not None:
            self.acts_until = max(self.acts_until, asked_at + self.timing.ttl - self.timing.margin)

    def lost(self) -> int | None:
        """The term ends (renewal refused, fence expired, or released); return its epoch."""
        epoch, self.epoch, self.acts_until = self.epoch, None, 0.0
        return epoch

    def may_act(self, now: float) -> bool:
        """True while this node holds a confirmed, unexpired term at ``now``."""
        return self.epoch is not None and now < self.acts_until

    def remaining(self, now: float) -> float:
        """Seconds left before the fence closes (0 when not owner)."""
        return max(0.0, self.acts_until - now) if self.epoch is not None else 0.0
