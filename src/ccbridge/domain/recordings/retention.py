"""Retention horizon: "kept 1 month" means one calendar month after the recording's UTC date.

A recording started on day D (UTC) of month M is kept through the same day number of month
M + n, clamped to that month's last day, and becomes eligible for purge at 00:00 UTC of the
day after. 2026-01-31 with one month: kept through 2026-02-28, eligible from 2026-03-01T00:00Z.
"""

from __future__ import annotations

import calendar
from datetime import UTC, date, datetime, time, timedelta

DEFAULT_RETENTION_MONTHS = 1
MAX_RETENTION_MONTHS = 120


def add_months(day: date, months: int) -> date:
    """Same day number *months* later, clamped to the target month's last day."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    last = calendar.monthrange(year, month)[1]
    return date(year, month, min(day.day, last))


def kept_through(started_at: datetime, months: int) -> date:
    """The last UTC day on which a recording started at *started_at* is still kept."""
    if not 1 <= months <= MAX_RETENTION_MONTHS:
        raise ValueError(f"retention must be 1..{MAX_RETENTION_MONTHS} months, got {months}")
    return add_months(started_at.astimezone(UTC).date(), months)


def purge_after(started_at: datetime, months: int) -> datetime:
    """The instant from which the recording may be purged (00:00 UTC after ``kept_through``)."""
    day = kept_through(started_at, months) + timedelta(days=1)
    return datetime.combine(day, time(0), tzinfo=UTC)


def started_before_for_purge(now: datetime, months: int) -> datetime:
    """Recordings started before this instant are past the horizon at *now*.

    Inverse of :func:`purge_after`: a recording is eligible when ``purge_after(started) <= now``.
    Searching for the latest eligible start day walks back at most a few days from the naive
    guess, because month clamping only ever shortens the kept period.
    """
    today = now.astimezone(UTC).date()
    candidate = add_months(today, -months) + timedelta(days=3)
    while purge_after(datetime.combine(candidate, time(0), tzinfo=UTC), months) > now:
        candidate -= timedelta(days=1)
    return datetime.combine(candidate + timedelta(days=1), time(0), tzinfo=UTC)
