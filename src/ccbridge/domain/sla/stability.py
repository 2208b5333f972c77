"""Monthly stability (F1) and what the client pays for it (F2), as the contract defines them.

F1: ``stability % = (1 − fault minutes / (days × 24 × 60)) × 100``.
F2: at or above 98 % the whole bill; between 90 and 98 % one per cent of the bill per point
below 98, pro-rated for partial points (97.5 % deducts 0.5 %); at or below 90 % pay 80 %, at
or below 80 % pay 50 %, at or below 65 % the client may refuse the month. The tiers replace the
per-point rule (the reading docs/sla.md explains), and every tier at or below 90 % requires a
written investigation report and improvement plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum

MINUTES_PER_DAY = 24 * 60
TARGET_PERCENT = Decimal(98)
PER_POINT = Decimal("0.01")
FEN = Decimal("0.01")


class SlaTier(StrEnum):
    """Where a month's stability falls in the contract's table (F2)."""

    MET = "met"
    PER_POINT = "per_point"
    PAY_80 = "pay_80"
    PAY_50 = "pay_50"
    REFUSABLE = "refusable"


@dataclass(frozen=True, slots=True)
class SlaOutcome:
    """The month's stability, its tier and what is paid of ``bill``."""

    stability_percent: Decimal
    tier: SlaTier
    pay_fraction: Decimal
    payable: Decimal
    deduction: Decimal
    report_required: bool
    """A written investigation report and improvement plan is owed (stability ≤ 90 %)."""


def stability_percent(fault_minutes: float, days_in_month: int) -> Decimal:
    """F1, to four decimal places (a month of 30 days has 43,200 minutes)."""
    if days_in_month <= 0:
        raise ValueError("a month has at least one day")
    if fault_minutes < 0:
        raise ValueError("fault minutes cannot be negative")
    minutes = Decimal(days_in_month * MINUTES_PER_DAY)
    faults = min(Decimal(str(fault_minutes)), minutes)
    percent = (1 - faults / minutes) * 100
    return percent.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)


def tier_of(stability: Decimal) -> tuple[SlaTier, Decimal]:
    """The tier of ``stability`` and the fraction of the bill paid under it."""
    if stability >= TARGET_PERCENT:
        return SlaTier.MET, Decimal(1)
    if stability > 90:
        return SlaTier.PER_POINT, 1 - PER_POINT * (TARGET_PERCENT - stability)
    if stability > 80:
        return SlaTier.PAY_80, Decimal("0.80")
    if stability > 65:
        return SlaTier.PAY_50, Decimal("0.50")
    return SlaTier.REFUSABLE, Decimal(0)


def sla_outcome(stability: Decimal, bill: Decimal) -> SlaOutcome:
    """Apply F2 to a monthly ``bill`` (before VAT); money is rounded to the fen."""
    tier, fraction = tier_of(stability)
    payable = (bill * fraction).quantize(FEN, rounding=ROUND_HALF_UP)
    return SlaOutcome(
        stability_percent=stability,
        tier=tier,
        pay_fraction=fraction,
        payable=payable,
        deduction=bill - payable,
        report_required=stability <= 90,
    )
