"""Report intervals in the tenant's time zone: 15/30/60 minutes up to a year."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo


class Granularity(StrEnum):
    """How wide one report row is."""

    MIN15 = "15min"
    MIN30 = "30min"
    MIN60 = "60min"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"
    HALF_YEAR = "half_year"
    YEAR = "year"

    @property
    def minutes(self) -> int | None:
        """Width in minutes for the sub-day intervals, else None."""
        return {"15min": 15, "30min": 30, "60min": 60}.get(self.value)


_MONTHS = {
    Granularity.MONTH: 1,
    Granularity.QUARTER: 3,
    Granularity.HALF_YEAR: 6,
    Granularity.YEAR: 12,
}


def interval_start(at: datetime, gran: Granularity, zone: ZoneInfo) -> datetime:
    """The start (tenant-local, aware) of the interval holding the instant *at*."""
    local = at.astimezone(zone)
    minutes = gran.minutes
    if minutes is not None:
        return local.replace(minute=local.minute - local.minute % minutes, second=0, microsecond=0)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if gran is Granularity.DAY:
        return day
    if gran is Granularity.WEEK:
        monday = day.date() - timedelta(days=day.weekday())
        return datetime(monday.year, monday.month, monday.day, tzinfo=zone)
    months = _MONTHS[gran]
    month = local.month - (local.month - 1) % months
    return datetime(local.year, month, 1, tzinfo=zone)


def next_start(start: datetime, gran: Granularity) -> datetime:
    """The start of the interval after the one starting at *start* (wall-clock arithmetic)."""
    zone = start.tzinfo
    minutes = gran.minutes
    if minutes is not None:
        naive = start.replace(tzinfo=None) + timedelta(minutes=minutes)
        return naive.replace(tzinfo=zone)
    if gran is Granularity.DAY:
        return (start.replace(tzinfo=None) + timedelta(days=1)).replace(tzinfo=zone)
    if gran is Granularity.WEEK:
        return (start.replace(tzinfo=None) + timedelta(days=7)).replace(tzinfo=zone)
    total = start.year * 12 + start.month - 1 + _MONTHS[gran]
    return start.replace(year=total // 12, month=total % 12 + 1)


def split(
    start: datetime, end: datetime, gran: Granularity, zone: ZoneInfo
) -> Iterator[tuple[datetime, float]]:
    """Cut ``[start, end)`` at interval boundaries: (interval start, seconds inside it)."""
    if end <= start:
        return
    cur = interval_start(start, gran, zone)
    while cur < end:
        nxt = next_start(cur, gran)
        inside = (min(end, nxt) - max(start, cur)).total_seconds()
        if inside > 0:
            yield cur, inside
        cur = nxt
