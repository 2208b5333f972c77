"""Additive counters per report row; every KPI is a ratio or a count over these inputs."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, fields

from ccbridge.domain.kpis.facts import CallFacts


@dataclass(slots=True)
class CallTally:
    """Call counters of one report row (interval × group); additive, so rows roll up."""

    offered: int = 0
    answered: int = 0
    answered_within_t: int = 0
    abandoned: int = 0
    short_abandoned: int = 0
    wait_answered_s: float = 0.0
    longest_wait_s: float = 0.0
    talk_s: float = 0.0
    wrap_s: float = 0.0
    transfers: int = 0
    billable: int = 0
    outbound: int = 0
    contributors: dict[str, list[str]] | None = field(default=None)
    """With ``explain``: the call ids behind each input, by input name."""

    @classmethod
    def explaining(cls) -> CallTally:
        """A tally that also remembers which calls fed each input."""
        return cls(contributors=defaultdict(list))

    def _note(self, name: str, call_id: str) -> None:
        if self.contributors is not None:
            self.contributors[name].append(call_id)

    def add(self, f: CallFacts, wrap_s: float = 0.0) -> None:
        """Count one call (``wrap_s``: the answering agent's after-call work for it)."""
        if f.outbound:
            self.outbound += 1
            self._note("outbound", f.call_id)
        if f.billable:
            self.billable += 1
            self._note("billable", f.call_id)
        if not f.inbound:
            return
        self.offered += 1
        self._note("offered", f.call_id)
        if f.wait_s is not None and f.wait_s > self.longest_wait_s:
            self.longest_wait_s = f.wait_s
            if self.contributors is not None:
                self.contributors["longest_wait_s"] = [f.call_id]
        if f.abandoned:
            self.abandoned += 1
            self._note("abandoned", f.call_id)
            if f.short_abandoned:
                self.short_abandoned += 1
                self._note("short_abandoned", f.call_id)
        if f.answered:
            self.answered += 1
            self._note("answered", f.call_id)
            self.wait_answered_s += f.wait_s or 0.0
            self._note("wait_answered_s", f.call_id)
            self.talk_s += f.talk_s
            self._note("talk_s", f.call_id)
            self.wrap_s += wrap_s
            if wrap_s:
                self._note("wrap_s", f.call_id)
            if f.answered_within_t:
                self.answered_within_t += 1
                self._note("answered_within_t", f.call_id)
        if f.transfers:
            self.transfers += f.transfers
            self._note("transfers", f.call_id)

    def inputs(self) -> dict[str, float]:
        """The counters by name, as the KPI formulas read them."""
        return {name: float(getattr(self, name)) for name in CALL_COUNTERS}

    def absorb(self, other: CallTally) -> None:
        """Add another row's counters (longest wait is a maximum): how 15-minute tallies roll up.

        Spelled out field by field: a month's roll-up absorbs some 100k tallies."""
        self.offered += other.offered
        self.answered += other.answered
        self.answered_within_t += other.answered_within_t
        self.abandoned += other.abandoned
        self.short_abandoned += other.short_abandoned
        self.wait_answered_s += other.wait_answered_s
        self.longest_wait_s = max(self.longest_wait_s, other.longest_wait_s)
        self.talk_s += other.talk_s
        self.wrap_s += other.wrap_s
        self.transfers += other.transfers
        self.billable += other.billable
        self.outbound += other.outbound


@dataclass(slots=True)
class SeatTally:
    """Seat time and work of one agent in one interval (seconds and counts)."""

    signed_in_s: float = 0.0
    ready_s: float = 0.0
    not_ready_s: float = 0.0
    break_s: float = 0.0
    talk_s: float = 0.0
    wrap_s: float = 0.0
    handled: int = 0
    billable: int = 0
    outbound: int = 0
    not_ready_by_reason: dict[str, float] = field(default_factory=dict)

    def inputs(self) -> dict[str, float]:
        """The counters by name, as the KPI formulas read them."""
        return {name: float(getattr(self, name)) for name in SEAT_COUNTERS}

    def absorb(self, other: SeatTally) -> None:
        """Add another interval's seat time and work (how 15-minute tallies roll up).

        Spelled out field by field: a month's seat roll-up absorbs some 100k tallies."""
        self.signed_in_s += other.signed_in_s
        self.ready_s += other.ready_s
        self.not_ready_s += other.not_ready_s
        self.break_s += other.break_s
        self.talk_s += other.talk_s
        self.wrap_s += other.wrap_s
        self.handled += other.handled
        self.billable += other.billable
        self.outbound += other.outbound
        if other.not_ready_by_reason:
            mine = self.not_ready_by_reason
            for reason, seconds in other.not_ready_by_reason.items():
                mine[reason] = mine.get(reason, 0.0) + seconds


CALL_COUNTERS = tuple(f.name for f in fields(CallTally) if f.name != "contributors")
"""The additive inputs of a call tally, in declaration order (what the aggregates store)."""
SEAT_COUNTERS = tuple(f.name for f in fields(SeatTally) if f.name != "not_ready_by_reason")
"""The additive inputs of a seat tally, in declaration order (what the aggregates store)."""
