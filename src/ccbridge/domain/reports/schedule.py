"""Which reports are generated and archived for each completed period (RPT-02/03).

Every day the four reports of the day before; every Monday the four of the week before at
day granularity; on the 1st the four and the operations report of the month before. A
period is archived once: the archive is keyed by (tenant, report, period, first day).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from ccbridge.domain.reports.intervals import Granularity
from ccbridge.domain.reports.model import Dimension, ReportKind


class Period(StrEnum):
    """How often a report is archived."""

    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


@dataclass(frozen=True, slots=True)
class ScheduledReport:
    """One report of a period's pack: which, at what interval, grouped how."""

    kind: ReportKind
    interval: Granularity
    group_by: Dimension


_FOUR = (
    ReportKind.SERVICE_LEVEL,
    ReportKind.SEAT_TIME,
    ReportKind.SEAT_DETAIL,
    ReportKind.CALL_ATTRIBUTES,
)

SCHEDULE: dict[Period, tuple[ScheduledReport, ...]] = {
    Period.DAILY: tuple(
        ScheduledReport(k, Granularity.MIN60, Dimension.SKILL_GROUP) for k in _FOUR
    ),
    Period.WEEKLY: tuple(ScheduledReport(k, Granularity.DAY, Dimension.SKILL_GROUP) for k in _FOUR),
    Period.MONTHLY: (
        *(ScheduledReport(k, Granularity.DAY, Dimension.SKILL_GROUP) for k in _FOUR),
        ScheduledReport(ReportKind.OPERATIONS, Granularity.MONTH, Dimension.TENANT),
    ),
}


def last_complete(period: Period, today: date) -> tuple[date, date]:
    """The latest period that ended before the tenant-local date *today* (first, last)."""
    if period is Period.DAILY:
        day = today - timedelta(days=1)
        return day, day
    if period is Period.WEEKLY:
        monday = today - timedelta(days=today.weekday() + 7)
        return monday, monday + timedelta(days=6)
    last = today.replace(day=1) - timedelta(days=1)
    return last.replace(day=1), last
