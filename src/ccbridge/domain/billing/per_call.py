"""The per-call fee model (contract F4, 000:380–390).

A billable call has talk time of at least ``min_talk_seconds`` (15 s; the source says
"15秒以上", and 以上 includes the bound). The unit price ramps down as the quota is settled at
80 %, 90 % and then 100 % of target in the first, second and later months: 4,200 yuan
(3,000 × 1.4) over 2,505.6, 2,818.8 and 3,132 calls gives 1.68, 1.49 and 1.34 yuan. Calls taken
on a public holiday when overtime was worked are paid at three times the unit price.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

FEN = Decimal("0.01")
HOLIDAY_MULTIPLIER = Decimal(3)
DEFAULT_RAMP = (Decimal("1.68"), Decimal("1.49"), Decimal("1.34"))
"""Unit prices in months 1, 2 and 3 onward of the contract (yuan per billable call)."""


def derived_unit_price(
    fixed_fee: Decimal, coefficient: Decimal, monthly_quota: Decimal, attainment: Decimal
) -> Decimal:
    """The contract's derivation: fee × management coefficient ÷ (quota × attainment)."""
    return (fixed_fee * coefficient / (monthly_quota * attainment)).quantize(
        FEN, rounding=ROUND_HALF_UP
    )


def unit_price(contract_month: int, ramp: Sequence[Decimal] = DEFAULT_RAMP) -> Decimal:
    """The unit price in the ``contract_month``-th month (1-based); the last step holds."""
    if contract_month < 1:
        raise ValueError("contract months count from 1")
    return ramp[min(contract_month, len(ramp)) - 1]


def is_billable(talk_seconds: float, min_talk_seconds: float = 15) -> bool:
    """Say whether a call counts for the per-call fee."""
    return talk_seconds >= min_talk_seconds


@dataclass(frozen=True, slots=True)
class PerCallFee:
    """The per-call part of a statement, line by line."""

    billable_calls: int
    holiday_calls: int
    unit_price: Decimal
    ordinary_amount: Decimal
    holiday_amount: Decimal
    adjustments: Decimal
    """QA and compliance rewards (+) and penalties (−), BILL-26."""

    @property
    def total(self) -> Decimal:
        """Before the SLA deduction and VAT."""
        return self.ordinary_amount + self.holiday_amount + self.adjustments


def per_call_fee(
    ordinary_calls: int,
    holiday_overtime_calls: int,
    contract_month: int,
    *,
    ramp: Sequence[Decimal] = DEFAULT_RAMP,
    adjustments: Decimal = Decimal(0),
) -> PerCallFee:
    """F4: ordinary calls at the month's price, holiday-overtime calls at three times it."""
    if ordinary_calls < 0 or holiday_overtime_calls < 0:
        raise ValueError("call counts cannot be negative")
    price = unit_price(contract_month, ramp)
    return PerCallFee(
        billable_calls=ordinary_calls + holiday_overtime_calls,
        holiday_calls=holiday_overtime_calls,
        unit_price=price,
        ordinary_amount=(price * ordinary_calls).quantize(FEN, rounding=ROUND_HALF_UP),
        holiday_amount=(price * HOLIDAY_MULTIPLIER * holiday_overtime_calls).quantize(
            FEN, rounding=ROUND_HALF_UP
        ),
        adjustments=adjustments,
    )


def monthly_quota(monthly_target: int, per_day: int, holidays_not_worked: int = 0) -> int:
    """The month's quota: the target (3,132 = 144 × 21.75), less 144 per public-holiday working
    day not worked; with holiday overtime the quota is unchanged (BILL-15)."""
    return max(0, monthly_target - per_day * holidays_not_worked)
