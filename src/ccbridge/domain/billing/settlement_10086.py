"""The 10086 per-seat settlement (contract 002, formulas F5-F8 in requirements §3).

F6 turns each agent's scheduled and worked hours into seats used per class; F7 picks the
assessment coefficient from the lowest of three scores; F5 multiplies seats by unit price and
coefficient and adds the over-target bonus less major-incident deductions; F8 splits that
bonus 20/80 between the provider and its staff. The source's F6 layout is garbled: whether
人员座席配比 (staff-seat ratio) divides or multiplies is a setting, as §3 asks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

FULL_TIME_MONTH_HOURS = Decimal("166.64")
"""20.83 statutory working days × 8 h: one full-time month (F6; an inference in §3)."""
PARTNER_BONUS_SHARE = Decimal("0.20")
"""F8: the partner keeps 20 % of the over-target bonus; 80 % goes to the staff."""
SEATS = Decimal("0.0001")
FEN = Decimal("0.01")


class SeatClass(StrEnum):
    """The seat classes F5 prices separately."""

    TRAINEE = "trainee"
    REGULAR = "regular"
    TEAM_LEADER = "team_leader"
    OVERTIME = "overtime"


class RatioUse(StrEnum):
    """How the staff-seat ratio enters F6 (the source's fraction layout is lost)."""

    DIVIDE = "divide"
    """``hours ÷ (166.64 × ratio)`` — §3's reconstruction."""
    MULTIPLY = "multiply"
    """``hours × ratio ÷ 166.64`` — the other reading."""


@dataclass(frozen=True, slots=True)
class AgentHours:
    """One agent's month: class, scheduled hours (排班时长) and total hours worked."""

    agent_no: str
    seat_class: SeatClass
    scheduled_hours: Decimal
    worked_hours: Decimal

    def __post_init__(self) -> None:
        """Refuse the overtime class (it is derived) and negative hours."""
        if self.seat_class is SeatClass.OVERTIME:
            raise ValueError("overtime seats are derived from worked hours, not assigned")
        if self.scheduled_hours < 0 or self.worked_hours < 0:
            raise ValueError("hours must be >= 0")


def _per_seat(hours: Decimal, ratio: Decimal, use: RatioUse) -> Decimal:
    if ratio <= 0:
        raise ValueError("the staff-seat ratio must be > 0")
    if use is RatioUse.DIVIDE:
        return hours / (FULL_TIME_MONTH_HOURS * ratio)
    return hours * ratio / FULL_TIME_MONTH_HOURS


def seats_used(
    agents: Iterable[AgentHours],
    ratio: Decimal = Decimal(1),
    use: RatioUse = RatioUse.DIVIDE,
) -> dict[SeatClass, Decimal]:
    """F6: seats used per class; overtime is Σ max(0, worked − 166.64 h) over all agents."""
    hours: dict[SeatClass, Decimal] = {c: Decimal(0) for c in SeatClass}
    for a in agents:
        hours[a.seat_class] += a.scheduled_hours
        hours[SeatClass.OVERTIME] += max(Decimal(0), a.worked_hours - FULL_TIME_MONTH_HOURS)
    return {c: _per_seat(h, ratio, use).quantize(SEATS, ROUND_HALF_UP) for c, h in hours.items()}


@dataclass(frozen=True, slots=True)
class CoefficientBand:
    """Scores at or above ``min_score`` earn ``coefficient`` (the 《商务规范书》 table)."""

    min_score: Decimal
    coefficient: Decimal


def assessment_coefficient(
    quality: Decimal, business: Decimal, total: Decimal, bands: Sequence[CoefficientBand]
) -> Decimal:
    """F7: the coefficient of the band the lowest of the three scores falls in."""
    if not bands:
        raise ValueError("the coefficient table is empty (it is per contract and region)")
    lowest = min(quality, business, total)
    fitting = [b for b in bands if lowest >= b.min_score]
    if not fitting:
        raise ValueError(f"score {lowest} is below the coefficient table's lowest band")
    return max(fitting, key=lambda b: b.min_score).coefficient


@dataclass(frozen=True, slots=True)
class BonusSplit:
    """F8: who gets the over-target bonus."""

    partner: Decimal
    staff: Decimal


def split_bonus(bonus: Decimal) -> BonusSplit:
    """F8: 20 % to the partner, the rest (80 %) to the staff, to the fen."""
    partner = (bonus * PARTNER_BONUS_SHARE).quantize(FEN, ROUND_HALF_UP)
    return BonusSplit(partner, bonus - partner)


@dataclass(frozen=True, slots=True)
class Settlement10086:
    """F5's lines: seats × price per class, the coefficient, bonus and deduction."""

    seats: Mapping[SeatClass, Decimal]
    prices: Mapping[SeatClass, Decimal]
    seat_amount: Decimal
    coefficient: Decimal
    bonus: Decimal
    deduction: Decimal
    total: Decimal


def monthly_fee(
    seats: Mapping[SeatClass, Decimal],
    prices: Mapping[SeatClass, Decimal],
    coefficient: Decimal,
    bonus: Decimal = Decimal(0),
    deduction: Decimal = Decimal(0),
) -> Settlement10086:
    """F5: Σ(price × seats) × coefficient + over-target bonus − major-incident deduction."""
    missing = [c.value for c in seats if seats[c] and c not in prices]
    if missing:
        raise ValueError(f"no unit price for seat class {', '.join(missing)}")
    amount = sum((prices[c] * n for c, n in seats.items() if n), Decimal(0))
    total = (amount * coefficient + bonus - deduction).quantize(FEN, ROUND_HALF_UP)
    return Settlement10086(
        dict(seats),
        dict(prices),
        amount.quantize(FEN, ROUND_HALF_UP),
        coefficient,
        bonus,
        deduction,
        total,
    )
