"""The 98 % stability SLA: F1 and F2 with the arithmetic written out, at each tier and edge."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

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
