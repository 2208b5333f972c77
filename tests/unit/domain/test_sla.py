"""The 98 % stability SLA: F1 and F2 with the arithmetic written out, at each tier and edge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from ccbridge.domain.sla.health import ErrorRateHealth, FastAgiHealth, JournalLagHealth
from ccbridge.domain.sla.incidents import (
    Exclusion,
    ExclusionReason,
    Incident,
    IncidentSource,
    fault_minutes,
)
from ccbridge.domain.sla.stability import SlaTier, sla_outcome, stability_percent

NOV_START = datetime(2026, 10, 31, 16, 0, tzinfo=UTC)  # 2026-11-01 00:00 Asia/Shanghai
NOV_END = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
BILL = Decimal("10000.00")


def incident(
    iid: str,
    start_min: float,
    minutes: float | None,
    *,
    tenants: frozenset[str] | None = None,
    excluded: bool = False,
) -> Incident:
    started = NOV_START + timedelta(minutes=start_min)
    return Incident(
        id=iid,
        started_at=started,
        ended_at=None if minutes is None else started + timedelta(minutes=minutes),
        cause="AMI down",
        source=IncidentSource.AUTOMATIC,
        tenants=tenants,
        exclusion=Exclusion(ExclusionReason.PLANNED_MAINTENANCE, "ops", "割接, notified", started)
        if excluded
        else None,
    )


def test_allowed_downtime_table_of_the_contract() -> None:
    # 30 days x 24 x 60 = 43,200 min; 2 % of it is 864 min (14.4 h).
    assert stability_percent(864, 30) == Decimal("98.0000")
    assert stability_percent(806.4, 28) == Decimal("98.0000")  # 40,320 x 2 % = 806.4
    assert stability_percent(892.8, 31) == Decimal("98.0000")  # 44,640 x 2 % = 892.8
    assert stability_percent(4320, 30) == Decimal("90.0000")
    assert stability_percent(8640, 30) == Decimal("80.0000")
    assert stability_percent(15120, 30) == Decimal("65.0000")
    assert stability_percent(0, 30) == Decimal("100.0000")
    assert stability_percent(99999, 30) == Decimal("0.0000")  # capped at the month


@pytest.mark.parametrize(
    ("stability", "tier", "payable", "report"),
    [
        # s >= 98: the whole bill
        ("99", SlaTier.MET, "10000.00", False),
        ("98", SlaTier.MET, "10000.00", False),
        # 90 < s < 98: 1 % per point below 98, pro-rated
        ("97.99", SlaTier.PER_POINT, "9999.00", False),  # 1 - 0.01 x 0.01 = 0.9999
        ("95", SlaTier.PER_POINT, "9700.00", False),  # 1 - 0.01 x 3 = 0.97
        ("90.01", SlaTier.PER_POINT, "9201.00", False),  # 1 - 0.01 x 7.99 = 0.9201
        # 80 < s <= 90: pay 80 %, report owed
        ("90", SlaTier.PAY_80, "8000.00", True),
        ("80.01", SlaTier.PAY_80, "8000.00", True),
        # 65 < s <= 80: pay 50 %
        ("80", SlaTier.PAY_50, "5000.00", True),
        ("65.01", SlaTier.PAY_50, "5000.00", True),
        # s <= 65: the client may refuse the month
        ("65", SlaTier.REFUSABLE, "0.00", True),
        ("10", SlaTier.REFUSABLE, "0.00", True),
    ],
)
def test_deduction_at_each_tier_and_edge(
    stability: str, tier: SlaTier, payable: str, report: bool
) -> None:
    outcome = sla_outcome(Decimal(stability), BILL)
    assert outcome.tier is tier
    assert outcome.payable == Decimal(payable)
    assert outcome.deduction == BILL - Decimal(payable)
    assert outcome.report_required is report


def test_fault_minutes_merge_overlaps_skip_exclusions_and_other_tenants() -> None:
    incidents = [
        incident("a", 60, 30),  # 01:00-01:30
        incident("b", 80, 30),  # 01:20-01:50 overlaps a: union 01:00-01:50 = 50 min
        incident("c", 600, 120, excluded=True),  # planned cut-over: 0
        incident("d", 900, 10, tenants=frozenset({"t2"})),  # another tenant: 0 for t1
        incident("e", 1000, 15, tenants=frozenset({"t1"})),  # 15
    ]
    now = NOV_END
    assert fault_minutes(incidents, "t1", NOV_START, NOV_END, now) == 65.0
    assert fault_minutes(incidents, "t2", NOV_START, NOV_END, now) == 60.0


def test_an_incident_is_clipped_to_the_month_and_an_open_one_runs_until_now() -> None:
    before = incident("x", -30, 40)  # 10 of its 40 min fall in November
    open_one = incident("y", 2000, None)
    now = NOV_START + timedelta(minutes=2025)
    assert fault_minutes([before, open_one], "t1", NOV_START, NOV_END, now) == 35.0


def test_an_incident_cannot_end_before_it_starts() -> None:
    with pytest.raises(ValueError, match="before it starts"):
        Incident("z", NOV_END, NOV_START, "x", IncidentSource.OPERATOR)


# --- automatic incidents from ccbridge's own health (FastAGI, 5xx rate, journal lag) ---


_T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _at(seconds: int) -> datetime:
    return _T0 + timedelta(seconds=seconds)


def test_fastagi_is_unhealthy_while_not_listening_or_refusing_for_capacity() -> None:
    h = FastAgiHealth(timedelta(seconds=30))
    assert h.observe(_at(0), True, 0)
    assert not h.observe(_at(5), False, 0)
    assert h.observe(_at(10), True, 0)
    assert not h.observe(_at(15), True, 2)  # two sessions refused since the window's start
    assert not h.observe(_at(40), True, 2)  # still inside 30 s of the refusals
    assert h.observe(_at(80), True, 2)  # the refusals left the window


def test_error_rate_needs_enough_requests_and_a_ratio_over_the_limit() -> None:
    h = ErrorRateHealth(timedelta(seconds=60), max_ratio=0.05, min_requests=20)
    assert h.observe(_at(0), 0, 0)
    assert h.observe(_at(5), 10, 5)  # 50 % but only 10 requests: not judged
    assert not h.observe(_at(10), 40, 6)  # 6 of 40 = 15 %
    assert h.observe(_at(100), 440, 8)  # 2 of the last 400 = 0.5 %
    assert h.observe(_at(105), 10, 0)  # counters reset (restart): counted from the reset


def test_journal_lag_judges_the_mean_lag_and_a_stuck_writer() -> None:
    h = JournalLagHealth(timedelta(seconds=60), max_lag=timedelta(seconds=30))
    assert h.observe(_at(0), 0, 0.0, 0)
    assert h.observe(_at(5), 10, 20.0, 0)  # 2 s on average
    assert not h.observe(_at(10), 20, 620.0, 0)  # (620 − 0) / 20 = 31 s on average
    stuck = JournalLagHealth(timedelta(seconds=60), max_lag=timedelta(seconds=30))
    assert stuck.observe(_at(0), 5, 1.0, 3)
    assert stuck.observe(_at(30), 5, 1.0, 3)  # nothing committed, but not a whole window yet
    assert not stuck.observe(_at(60), 5, 1.0, 3)  # events waited a whole window unwritten
    assert stuck.observe(_at(65), 5, 1.0, 0)  # nothing waiting: idle, not lagging
