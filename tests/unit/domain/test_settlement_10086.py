"""F5-F8, the 10086 per-seat settlement, checked against hand-computed figures."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from ccbridge.domain.billing.settlement_10086 import (
    AgentHours,
    CoefficientBand,
    RatioUse,
    SeatClass,
    assessment_coefficient,
    monthly_fee,
    seats_used,
    split_bonus,
)

AGENTS = [
    # 166.64 h scheduled is one seat; 180 h worked is 13.36 h of overtime.
    AgentHours("1001", SeatClass.REGULAR, D("166.64"), D("180")),
    AgentHours("1002", SeatClass.REGULAR, D("83.32"), D("83.32")),
    AgentHours("1003", SeatClass.TRAINEE, D("166.64"), D("150")),
    AgentHours("1004", SeatClass.TEAM_LEADER, D("166.64"), D("199.96")),
]


def test_f6_seats_from_scheduled_hours_and_overtime() -> None:
    seats = seats_used(AGENTS)
    # regular: (166.64 + 83.32) / 166.64 = 1.5; overtime: (13.36 + 33.32) / 166.64 = 0.2801
    assert seats == {
        SeatClass.REGULAR: D("1.5000"),
        SeatClass.TRAINEE: D("1.0000"),
        SeatClass.TEAM_LEADER: D("1.0000"),
        SeatClass.OVERTIME: D("0.2801"),
    }


def test_f6_ratio_divides_or_multiplies() -> None:
    divided = seats_used(AGENTS, ratio=D("1.25"))
    multiplied = seats_used(AGENTS, ratio=D("1.25"), use=RatioUse.MULTIPLY)
    assert divided[SeatClass.REGULAR] == D("1.2000")  # 1.5 / 1.25
    assert multiplied[SeatClass.REGULAR] == D("1.8750")  # 1.5 × 1.25
    with pytest.raises(ValueError, match="ratio"):
        seats_used(AGENTS, ratio=D(0))
    with pytest.raises(ValueError, match="derived"):
        AgentHours("x", SeatClass.OVERTIME, D(1), D(1))


BANDS = [
    CoefficientBand(D(95), D("1.05")),
    CoefficientBand(D(90), D("1.00")),
    CoefficientBand(D(80), D("0.95")),
    CoefficientBand(D(0), D("0.90")),
]


@pytest.mark.parametrize(
    ("quality", "business", "total", "coef"),
    [
        (D(99), D(96), D(97), D("1.05")),
        (D(99), D("94.9"), D(97), D("1.00")),  # the lowest score decides (business)
        (D(90), D(99), D(99), D("1.00")),  # a band's lower edge belongs to it
        (D(85), D(99), D("79.99"), D("0.90")),  # 79.99 is under the 80 band
    ],
)
def test_f7_the_lowest_score_sets_the_coefficient(
    quality: D, business: D, total: D, coef: D
) -> None:
    assert assessment_coefficient(quality, business, total, BANDS) == coef


def test_f7_refuses_an_empty_table_or_a_score_below_it() -> None:
    with pytest.raises(ValueError, match="empty"):
        assessment_coefficient(D(1), D(1), D(1), [])
    with pytest.raises(ValueError, match="below"):
        assessment_coefficient(D(50), D(99), D(99), BANDS[:3])


def test_f8_splits_the_bonus_20_80() -> None:
    split = split_bonus(D("1000.05"))
    assert (split.partner, split.staff) == (D("200.01"), D("800.04"))


def test_f5_monthly_fee() -> None:
    seats = seats_used(AGENTS)
    prices = {
        SeatClass.REGULAR: D(6000),
        SeatClass.TRAINEE: D(4000),
        SeatClass.TEAM_LEADER: D(8000),
        SeatClass.OVERTIME: D(6000),
    }
    fee = monthly_fee(seats, prices, D("0.95"), bonus=D(500), deduction=D(1000))
    # 1.5 × 6000 + 1 × 4000 + 1 × 8000 + 0.2801 × 6000 = 22,680.60
    assert fee.seat_amount == D("22680.60")
    # 22,680.60 × 0.95 + 500 − 1000 = 21,046.57
    assert fee.total == D("21046.57")
    with pytest.raises(ValueError, match="trainee"):
        monthly_fee(seats, {SeatClass.REGULAR: D(1)}, D(1))
