"""The monthly statement for both billing models and a holiday month, arithmetic shown."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from ccbridge.domain.billing.per_call import (
    derived_unit_price,
    is_billable,
    monthly_quota,
    per_call_fee,
    unit_price,
)
from ccbridge.domain.billing.statement import (
    BillingModel,
    Statement,
    StatementLine,
    StatementState,
    StatementTransitionError,
    deadlines,
    seat_lines,
)
from ccbridge.domain.calendar import WorkingCalendar
from ccbridge.domain.sla.stability import sla_outcome

NATIONAL_DAY = frozenset(date(2026, 10, d) for d in range(1, 8))
CALENDAR = WorkingCalendar(
    holidays=NATIONAL_DAY,
    makeup_days=frozenset({date(2026, 9, 20), date(2026, 10, 10)}),
    years=frozenset({2026}),
)
AT = datetime(2026, 11, 3, 2, 0, tzinfo=UTC)


def test_the_unit_price_ramp_is_the_contracts_derivation() -> None:
    fee, coefficient, quota = Decimal(3000), Decimal("1.4"), Decimal(3132)
    # 4200 / (3132 x 0.8 = 2505.6) = 1.676 -> 1.68; / 2818.8 = 1.490 -> 1.49; / 3132 = 1.341
    assert derived_unit_price(fee, coefficient, quota, Decimal("0.8")) == Decimal("1.68")
    assert derived_unit_price(fee, coefficient, quota, Decimal("0.9")) == Decimal("1.49")
    assert derived_unit_price(fee, coefficient, quota, Decimal(1)) == Decimal("1.34")
    assert [unit_price(m) for m in (1, 2, 3, 12)] == [
        Decimal("1.68"),
        Decimal("1.49"),
        Decimal("1.34"),
        Decimal("1.34"),
    ]
    with pytest.raises(ValueError, match="count from 1"):
        unit_price(0)


def test_a_billable_call_talks_15_seconds_or_more() -> None:
    assert not is_billable(14.9)
    assert is_billable(15)  # "15秒以上": 以上 includes the bound
    assert is_billable(15.1)


def test_the_quota_drops_by_holidays_not_worked() -> None:
    # National Day 2026 falls on 5 weekdays (1, 2, 5, 6, 7 Oct): 3132 - 5 x 144 = 2412
    holiday_weekdays = sum(1 for d in NATIONAL_DAY if d.weekday() < 5)
    assert holiday_weekdays == 5
    assert monthly_quota(3132, 144, holiday_weekdays) == 2412
    assert monthly_quota(3132, 144, 0) == 3132  # overtime worked: unchanged


def test_per_call_statement_in_a_holiday_month_with_an_sla_miss() -> None:
    # Month 3 of the contract: 1.34 yuan. 2,000 ordinary calls = 2,680.00;
    # 300 National Day overtime calls at 3 x 1.34 = 4.02 -> 1,206.00; QA penalty -50.00.
    fee = per_call_fee(2000, 300, contract_month=3, adjustments=Decimal("-50.00"))
    assert (fee.ordinary_amount, fee.holiday_amount) == (Decimal("2680.00"), Decimal("1206.00"))
    assert fee.total == Decimal("3836.00")
    lines = (
        StatementLine("15秒以上通话 x 1.34", Decimal(2000), Decimal("1.34"), fee.ordinary_amount),
        StatementLine("节假日加班通话 x 4.02", Decimal(300), Decimal("4.02"), fee.holiday_amount),
        StatementLine("质检扣罚", Decimal(1), Decimal("-50.00"), Decimal("-50.00")),
    )
    # Stability 97.5 %: 0.5 point below 98 -> 0.5 % off: 3836.00 x 0.995 = 3816.82
    sla = sla_outcome(Decimal("97.5"), fee.total)
    statement = Statement(
        "t1", 2026, 10, BillingModel.PER_CALL, lines, sla, deadlines(2026, 10, AT.date(), CALENDAR)
    )
    money = statement.totals
    assert money.subtotal == Decimal("3836.00")
    assert money.net == Decimal("3816.82")
    assert money.sla_deduction == Decimal("19.18")
    assert money.vat == Decimal("229.01")  # 3816.82 x 6 % = 229.0092
    assert money.total == Decimal("4045.83")


def test_seat_statement_with_the_sla_met() -> None:
    # 8 inbound seats x 800 + 3 inbound+outbound x 1,200 = 6,400 + 3,600 = 10,000
    lines = seat_lines(
        {"inbound": 8, "inbound_outbound": 3, "unused": 0},
        {"inbound": Decimal(800), "inbound_outbound": Decimal(1200)},
        {"inbound": "纯呼入坐席", "inbound_outbound": "呼入呼出坐席"},
    )
    assert [(line.item, line.amount) for line in lines] == [
        ("纯呼入坐席", Decimal("6400.00")),
        ("呼入呼出坐席", Decimal("3600.00")),
    ]
    sla = sla_outcome(Decimal("99.2"), Decimal("10000.00"))
    statement = Statement(
        "t1",
        2026,
        11,
        BillingModel.SEATS,
        tuple(lines),
        sla,
        deadlines(2026, 11, date(2026, 12, 2), CALENDAR),
    )
    assert statement.totals.net == Decimal("10000.00")
    assert statement.totals.total == Decimal("10600.00")  # + 6 % VAT


def test_the_billing_calendar() -> None:
    # October's statement, issued Tue 3 Nov: confirm within 5 working days -> Tue 10 Nov
    d = deadlines(2026, 10, date(2026, 11, 3), CALENDAR)
    assert d.issue_by == date(2026, 11, 5)
    assert d.confirm_by == date(2026, 11, 10)
    assert d.payment_due == date(2026, 11, 20)
    # September's, issued Wed 30 Sep: 1-7 Oct are holidays; then Thu 8, Fri 9, Sat 10 (调休
    # make-up day), Mon 12, Tue 13 are working days 1-5.
    assert deadlines(2026, 9, date(2026, 9, 30), CALENDAR).confirm_by == date(2026, 10, 13)
    december = deadlines(2026, 12, date(2027, 1, 4), WorkingCalendar())
    assert (december.issue_by, december.payment_due) == (date(2027, 1, 5), date(2027, 1, 20))


def _statement() -> Statement:
    lines = (StatementLine("坐席", Decimal(10), Decimal(1000), Decimal("10000.00")),)
    return Statement(
        "t1",
        2026,
        10,
        BillingModel.SEATS,
        lines,
        None,
        deadlines(2026, 10, date(2026, 11, 3), CALENDAR),
    )


def test_states_move_forward_only_and_keep_an_audit_trail() -> None:
    s = _statement()
    assert s.state is StatementState.ISSUED
    s = s.advance(StatementState.CONFIRMED, AT, "client:t1", "签字确认")
    s = s.advance(StatementState.INVOICED, AT, "ops")
    with pytest.raises(StatementTransitionError, match="invoiced cannot be confirmed"):
        s.advance(StatementState.CONFIRMED, AT, "ops")
    s = s.advance(StatementState.PAID, AT, "ops")
    assert [(t.to, t.by) for t in s.trail] == [
        (StatementState.CONFIRMED, "client:t1"),
        (StatementState.INVOICED, "ops"),
        (StatementState.PAID, "ops"),
    ]
    assert s.days_overdue(date(2027, 3, 1)) == 0


def test_deemed_confirmation_late_fee_and_termination_right() -> None:
    s = _statement()  # total 10,600.00 with VAT, due 20 Nov
    assert not s.deemed_confirmed(date(2026, 11, 10))
    assert s.deemed_confirmed(date(2026, 11, 11))
    # 10 days late at 0.3 %/day: 10,600 x 0.003 x 10 = 318.00
    assert s.late_fee(date(2026, 11, 30)) == Decimal("318.00")
    assert s.late_fee(date(2026, 11, 20)) == Decimal("0.00")
    assert not s.termination_right(date(2027, 1, 19))  # 60 days
    assert s.termination_right(date(2027, 1, 20))  # 61 days
