"""A tenant's monthly statement: its lines, the SLA deduction, 6 % VAT, and its life.

States follow the contract's billing calendar (000:410): issued by the 5th for the previous
month; confirmed by the client within 5 working days, or deemed confirmed after; invoiced
within 2 working days; paid by the 20th, after which a late fee accrues per day (F3) and, past
60 days, the provider may terminate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

from ccbridge.domain.calendar import WorkingCalendar
from ccbridge.domain.sla.stability import SlaOutcome

FEN = Decimal("0.01")
VAT_RATE = Decimal("0.06")
ISSUE_BY_DAY = 5
CONFIRM_WORKING_DAYS = 5
INVOICE_WORKING_DAYS = 2
PAY_BY_DAY = 20
TERMINATION_AFTER_DAYS = 60
LEASE_LATE_FEE_PER_DAY = Decimal("0.003")
"""Seat-lease contract (000:234): 0.3 % of the overdue amount per day."""


class BillingModel(StrEnum):
    """How the month is charged."""

    SEATS = "seats"
    PER_CALL = "per_call"


class StatementState(StrEnum):
    """Where a statement is in the billing calendar."""

    ISSUED = "issued"
    CONFIRMED = "confirmed"
    INVOICED = "invoiced"
    PAID = "paid"


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One charge: what, how many, at what unit price, for how much."""

    item: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Transition:
    """An entry of the statement's audit trail."""

    to: StatementState
    at: datetime
    by: str
    note: str = ""


@dataclass(frozen=True, slots=True)
class Totals:
    """The money of a statement, each step shown."""

    subtotal: Decimal
    sla_deduction: Decimal
    net: Decimal
    vat: Decimal
    total: Decimal


def totals(lines: Sequence[StatementLine], sla: SlaOutcome | None) -> Totals:
    """Sum the lines, deduct the SLA share (F2 applies to the bill before tax), add 6 % VAT."""
    subtotal = sum((line.amount for line in lines), Decimal(0))
    fraction = sla.pay_fraction if sla is not None else Decimal(1)
    net = (subtotal * fraction).quantize(FEN, rounding=ROUND_HALF_UP)
    vat = (net * VAT_RATE).quantize(FEN, rounding=ROUND_HALF_UP)
    return Totals(subtotal, subtotal - net, net, vat, net + vat)


def seat_lines(
    used: dict[str, int], price: dict[str, Decimal], label: dict[str, str]
) -> list[StatementLine]:
    """One line per seat kind used: seats × monthly price per seat."""
    return [
        StatementLine(
            item=label.get(kind, kind),
            quantity=Decimal(count),
            unit_price=price.get(kind, Decimal(0)),
            amount=(price.get(kind, Decimal(0)) * count).quantize(FEN, rounding=ROUND_HALF_UP),
        )
        for kind, count in sorted(used.items())
        if count > 0
    ]


@dataclass(frozen=True, slots=True)
class Deadlines:
    """The calendar of one month's statement."""

    issue_by: date
    confirm_by: date
    payment_due: date


def deadlines(year: int, month: int, issued_on: date, calendar: WorkingCalendar) -> Deadlines:
    """The deadlines of the statement for ``year-month`` issued on ``issued_on``."""
    next_year, next_month = (year + 1, 1) if month == 12 else (year, month + 1)
    return Deadlines(
        issue_by=date(next_year, next_month, ISSUE_BY_DAY),
        confirm_by=calendar.add_working_days(issued_on, CONFIRM_WORKING_DAYS),
        payment_due=date(next_year, next_month, PAY_BY_DAY),
    )


class StatementTransitionError(ValueError):
    """A state change the billing calendar does not allow."""


_NEXT = {
    StatementState.ISSUED: StatementState.CONFIRMED,
    StatementState.CONFIRMED: StatementState.INVOICED,
    StatementState.INVOICED: StatementState.PAID,
}


@dataclass(frozen=True, slots=True)
class Statement:
    """A tenant's statement for one month, with its audit trail."""

    tenant: str
    year: int
    month: int
    model: BillingModel
    lines: tuple[StatementLine, ...]
    sla: SlaOutcome | None
    deadlines: Deadlines
    trail: tuple[Transition, ...] = field(default=())

    @property
    def state(self) -> StatementState:
        """The latest state in the trail."""
        return self.trail[-1].to if self.trail else StatementState.ISSUED

    @property
    def totals(self) -> Totals:
        """The money, each step shown."""
        return totals(self.lines, self.sla)

    def advance(self, to: StatementState, at: datetime, by: str, note: str = "") -> Statement:
        """Move to the next state (confirm, invoice, pay); any other move is refused."""
        if _NEXT.get(self.state) is not to:
            raise StatementTransitionError(f"a statement that is {self.state} cannot be {to}")
        return replace(self, trail=(*self.trail, Transition(to, at, by, note)))

    def deemed_confirmed(self, today: date) -> bool:
        """Unanswered past the confirmation deadline counts as confirmed (000:410)."""
        return self.state is StatementState.ISSUED and today > self.deadlines.confirm_by

    def days_overdue(self, today: date) -> int:
        """Days after the payment due date while unpaid."""
        if self.state is StatementState.PAID:
            return 0
        return max(0, (today - self.deadlines.payment_due).days)

    def late_fee(self, today: date, daily_rate: Decimal = LEASE_LATE_FEE_PER_DAY) -> Decimal:
        """F3: overdue amount × daily rate × days overdue."""
        fee = self.totals.total * daily_rate * self.days_overdue(today)
        return fee.quantize(FEN, rounding=ROUND_HALF_UP)

    def termination_right(self, today: date) -> bool:
        """More than 60 days overdue: the provider may terminate (000:234)."""
        return self.days_overdue(today) > TERMINATION_AFTER_DAYS
