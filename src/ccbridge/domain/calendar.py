"""Working days and tenant-local dates: Mon–Fri minus holidays, plus make-up working days."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

DEFAULT_TIMEZONE = "Asia/Shanghai"
"""Tenants live in China unless their profile says otherwise."""


@lru_cache(maxsize=64)
def tenant_zone(name: str | None = None) -> ZoneInfo:
    """Return the tenant's time zone (``Asia/Shanghai`` when none is configured)."""
    return ZoneInfo(name or DEFAULT_TIMEZONE)


def require_aware(now: datetime) -> None:
    """Refuse a naive datetime: the domain works with aware UTC instants only."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("expected an aware datetime, got a naive one")


def local_date(now: datetime, timezone: str | None = None) -> date:
    """Return the tenant-local calendar date of the instant ``now``."""
    require_aware(now)
    return now.astimezone(tenant_zone(timezone)).date()


def is_working_day(
    day: date, holidays: Collection[date] = (), makeup_days: Collection[date] = ()
) -> bool:
    """Say whether ``day`` is a working day: Mon–Fri minus holidays, plus make-up days (调休)."""
    if day in makeup_days:
        return True
    return day.weekday() < 5 and day not in holidays


def add_working_days(
    day: date, n: int, holidays: Collection[date] = (), makeup_days: Collection[date] = ()
) -> date:
    """Return the ``n``-th working day after ``day`` (``day`` itself never counts; ``n >= 0``)."""
    if n < 0:
        raise ValueError("n must be >= 0")
    current = day
    remaining = n
    while remaining:
        current += timedelta(days=1)
        if is_working_day(current, holidays, makeup_days):
            remaining -= 1
    return current


def working_days_between(
    start: date, end: date, holidays: Collection[date] = (), makeup_days: Collection[date] = ()
) -> int:
    """Count the working days in ``(start, end]``; 0 when ``end <= start``."""
    count = 0
    current = start
    while current < end:
        current += timedelta(days=1)
        if is_working_day(current, holidays, makeup_days):
            count += 1
    return count
