"""Seat leases: how many seats of which kind a tenant rents, when, at what price, and changes.

A seat is a concurrent-use licence, not a PC (SEAT-03): the limit is on agents signed in at once.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from ccbridge.domain.agents.policy import ALLOWED, Allowed, RefusalCode, Refused
from ccbridge.domain.calendar import DEFAULT_TIMEZONE, add_working_days, local_date


class SeatKind(StrEnum):
    """纯呼入 (inbound only) or 呼入呼出 (inbound and outbound)."""

    INBOUND = "inbound"
    INBOUND_OUTBOUND = "inbound_outbound"


class SeatUsage(StrEnum):
    """What "seats actually used" means when the month is billed (BILL-02; docs/billing.md)."""

    PEAK = "peak"
    """The month's largest number of seats of the kind signed in at once."""
    SEAT_DAYS = "seat_days"
    """Each tenant-local day's peak, averaged over the days of the month."""


class Capability(StrEnum):
    """Softphone functions of a seat (SEAT-01, SEAT-02)."""

    SIGN_IN_OUT = "sign_in_out"
    READY_NOT_READY = "ready_not_ready"
    INTERNAL_TRANSFER = "internal_transfer"
    INTERNAL_CALL = "internal_call"
    HOLD = "hold"
    HAND_BACK_TO_IVR = "hand_back_to_ivr"
    OUTBOUND_CALL = "outbound_call"
    TRANSFER_INCOMING = "transfer_incoming"
    THREE_WAY_CALL = "three_way_call"
    TRANSFER_OUT = "transfer_out"


_INBOUND = frozenset(
    {
        Capability.SIGN_IN_OUT,
        Capability.READY_NOT_READY,
        Capability.INTERNAL_TRANSFER,
        Capability.INTERNAL_CALL,
        Capability.HOLD,
        Capability.HAND_BACK_TO_IVR,
    }
)
CAPABILITIES: Mapping[SeatKind, frozenset[Capability]] = {
    SeatKind.INBOUND: _INBOUND,
    SeatKind.INBOUND_OUTBOUND: _INBOUND
    | {
        Capability.OUTBOUND_CALL,
        Capability.TRANSFER_INCOMING,
        Capability.THREE_WAY_CALL,
        Capability.TRANSFER_OUT,
    },
}
"""Which seat kind allows which function."""

_KIND_LABEL = {SeatKind.INBOUND: "inbound", SeatKind.INBOUND_OUTBOUND: "inbound+outbound"}


def check_capability(kind: SeatKind, capability: Capability) -> Allowed | Refused:
    """Refuse a function the seat kind does not include (e.g. outbound on an inbound seat)."""
    if capability in CAPABILITIES[kind]:
        return ALLOWED
    return Refused(
        RefusalCode.CAPABILITY_NOT_LEASED,
        f"'{capability.value}' is not available on an {_KIND_LABEL[kind]} seat; "
        "it needs an inbound+outbound seat.",
    )


@dataclass(frozen=True, slots=True)
class SeatLease:
    """A tenant's rented seats per kind, valid on ``[valid_from, valid_until]`` (tenant dates)."""

    tenant: str
    seats: Mapping[SeatKind, int]
    valid_from: date
    valid_until: date | None = None
    monthly_price: Mapping[SeatKind, Decimal] = field(default_factory=dict)
    """Monthly rent per seat of each kind (yuan)."""
    timezone: str = DEFAULT_TIMEZONE
    seat_usage: SeatUsage = SeatUsage.PEAK
    """How the seats used in a month are counted for the statement."""

    def __post_init__(self) -> None:
        """Reject negative seat counts and an inverted window."""
        if any(n < 0 for n in self.seats.values()):
            raise ValueError("seat counts must be >= 0")
        if self.valid_until is not None and self.valid_until < self.valid_from:
            raise ValueError("valid_until is before valid_from")

    def seats_of(self, kind: SeatKind) -> int:
        """Return the number of leased seats of ``kind``."""
        return self.seats.get(kind, 0)

    def price_of(self, kind: SeatKind) -> Decimal:
        """Return the monthly price of one seat of ``kind``."""
        return self.monthly_price.get(kind, Decimal(0))

    def is_active_on(self, day: date) -> bool:
        """Say whether the lease covers the tenant-local date ``day``."""
        return self.valid_from <= day and (self.valid_until is None or day <= self.valid_until)

    def is_active_at(self, now: datetime) -> bool:
        """Say whether the lease covers the instant ``now``."""
        return self.is_active_on(local_date(now, self.timezone))


def can_sign_in(
    tenant_active_seats_by_kind: Mapping[SeatKind, int],
    lease: SeatLease | None,
    kind: SeatKind,
    now: datetime | None = None,
) -> Allowed | Refused:
    """Decide whether one more agent may sign in on a seat of ``kind`` (concurrency limit).

    ``tenant_active_seats_by_kind`` counts the tenant's agents signed in now, before this one.
    With ``now`` the lease window is checked too.
    """
    if lease is None or (now is not None and not lease.is_active_at(now)):
        tenant = lease.tenant if lease else "this tenant"
        return Refused(RefusalCode.LEASE_NOT_ACTIVE, f"There is no active seat lease for {tenant}.")
    leased = lease.seats_of(kind)
    active = tenant_active_seats_by_kind.get(kind, 0)
    if active >= leased:
        return Refused(
            RefusalCode.SEAT_LIMIT_REACHED,
            f"All {leased} leased {_KIND_LABEL[kind]} seats of {lease.tenant} are in use; "
            "wait until an agent signs out, or lease more seats.",
        )
    return ALLOWED


class ChangeKind(StrEnum):
    """What a change request alters; each has its own notice period (§2.14 B)."""

    SEAT_COUNT = "seat_count"
    SEAT_KIND = "seat_kind"
    SKILL_GROUP = "skill_group"
    IVR = "ivr"


NOTICE_WORKING_DAYS: Mapping[ChangeKind, int] = {
    ChangeKind.SEAT_COUNT: 7,
    ChangeKind.SEAT_KIND: 7,
    ChangeKind.SKILL_GROUP: 1,
    ChangeKind.IVR: 1,
}
"""Contract notice in working days (SEAT-05: 7 for seats; 1 for skill groups and IVR)."""


@dataclass(frozen=True, slots=True)
class LeaseChange:
    """A change request: new seat counts (for seat changes) taking effect on ``effective_on``."""

    tenant: str
    kind: ChangeKind
    requested_at: datetime
    effective_on: date
    seats: Mapping[SeatKind, int] | None = None
    """The complete new seat counts per kind, for ``SEAT_COUNT`` and ``SEAT_KIND`` changes."""
    override_by: str | None = None
    """Platform admin who waived the notice period (the caller checks the role)."""


def earliest_effective_date(
    kind: ChangeKind,
    requested_at: datetime,
    holidays: Collection[date] = (),
    makeup_days: Collection[date] = (),
    timezone: str = DEFAULT_TIMEZONE,
) -> date:
    """Return the first date a change requested at ``requested_at`` may take effect."""
    day = local_date(requested_at, timezone)
    return add_working_days(day, NOTICE_WORKING_DAYS[kind], holidays, makeup_days)


def validate_change(
    change: LeaseChange,
    holidays: Collection[date] = (),
    makeup_days: Collection[date] = (),
    timezone: str = DEFAULT_TIMEZONE,
) -> Allowed | Refused:
    """Check the notice period; a platform-admin override waives it but not a past date."""
    earliest = earliest_effective_date(
        change.kind, change.requested_at, holidays, makeup_days, timezone
    )
    return check_notice(change, earliest, timezone)


def check_notice(change: LeaseChange, earliest: date, timezone: str) -> Allowed | Refused:
    """Judge ``change`` against an ``earliest`` date already counted on the working calendar."""
    today = local_date(change.requested_at, timezone)
    if change.effective_on < today:
        return Refused(
            RefusalCode.EFFECTIVE_DATE_IN_PAST,
            f"The effective date {change.effective_on} is in the past.",
        )
    if change.effective_on >= earliest:
        return ALLOWED
    if change.override_by:
        return Allowed(note=f"notice period waived by platform admin {change.override_by}")
    days = NOTICE_WORKING_DAYS[change.kind]
    unit = "working day's" if days == 1 else "working days'"
    return Refused(
        RefusalCode.NOTICE_TOO_SHORT,
        f"A {change.kind.value.replace('_', ' ')} change needs {days} {unit} notice; "
        f"the earliest effective date is {earliest}.",
    )


def lease_on(lease: SeatLease, changes: Collection[LeaseChange], day: date) -> SeatLease:
    """Return the lease as in force on ``day``: the latest seat change effective by then wins."""
    due = sorted(
        (c for c in changes if c.seats is not None and c.effective_on <= day),
        key=lambda c: (c.effective_on, c.requested_at),
    )
    if not due or due[-1].seats is None:
        return lease
    return SeatLease(
        tenant=lease.tenant,
        seats=dict(due[-1].seats),
        valid_from=lease.valid_from,
        valid_until=lease.valid_until,
        monthly_price=lease.monthly_price,
        timezone=lease.timezone,
        seat_usage=lease.seat_usage,
    )
