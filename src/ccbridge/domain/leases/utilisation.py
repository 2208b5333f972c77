"""Seat utilisation from sign-in intervals: per-hour peak concurrency and monthly seats used.

"Seats actually used" of a kind in a month is the peak number of that kind's seats signed in
at the same time during the month (tenant-local month). Intervals are half-open
``[start, end)``: a sign-out and a sign-in at the same instant do not overlap.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from ccbridge.domain.calendar import DEFAULT_TIMEZONE, require_aware, tenant_zone
from ccbridge.domain.leases.model import SeatKind

HOUR = timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class SignInInterval:
    """One agent's signed-in time on a seat of ``kind``; ``end`` None means still signed in."""

    kind: SeatKind
    start: datetime
    end: datetime | None = None
    agent_no: str = ""


@dataclass(frozen=True, slots=True)
class HourlyPeak:
    """Peak concurrent signed-in seats of one kind in the hour starting at ``hour`` (UTC)."""

    hour: datetime
    kind: SeatKind
    peak: int
    leased: int

    @property
    def ratio(self) -> float:
        """Return ``peak / leased`` (0 when nothing is leased)."""
        return self.peak / self.leased if self.leased else 0.0


def _events(
    intervals: Iterable[SignInInterval], kind: SeatKind, start: datetime, end: datetime
) -> list[tuple[datetime, int]]:
    """Clip the intervals of ``kind`` to ``[start, end)`` and return sorted +1/-1 events."""
    events: list[tuple[datetime, int]] = []
    for iv in intervals:
        if iv.kind is not kind:
            continue
        lo = max(iv.start, start)
        hi = end if iv.end is None else min(iv.end, end)
        if lo < hi:
            events.append((lo, 1))
            events.append((hi, -1))
    events.sort()  # at equal instants -1 sorts first: half-open intervals
    return events


def _floor_hour(t: datetime) -> datetime:
    t = t.astimezone(UTC)
    return t.replace(minute=0, second=0, microsecond=0)


def hourly_peaks(
    intervals: Iterable[SignInInterval],
    start: datetime,
    end: datetime,
    leased: Mapping[SeatKind, int] | None = None,
) -> list[HourlyPeak]:
    """Return the peak concurrency of each kind for every UTC hour overlapping ``[start, end)``."""
    require_aware(start)
    require_aware(end)
    items = list(intervals)
    leased = leased or {}
    out: list[HourlyPeak] = []
    first = _floor_hour(start)
    for kind in SeatKind:
        events = _events(items, kind, start, end)
        level, i = 0, 0
        hour = first
        while hour < end:
            nxt = hour + HOUR
            while i < len(events) and events[i][0] <= hour:  # instants at the hour's start
                level += events[i][1]
                i += 1
            peak = level
            while i < len(events) and events[i][0] < nxt:
                level += events[i][1]
                peak = max(peak, level)
                i += 1
            out.append(HourlyPeak(hour, kind, peak, leased.get(kind, 0)))
            hour = nxt
    out.sort(key=lambda p: (p.hour, list(SeatKind).index(p.kind)))
    return out


def peak_concurrency(
    intervals: Iterable[SignInInterval], kind: SeatKind, start: datetime, end: datetime
) -> int:
    """Return the largest number of ``kind`` seats signed in at once within ``[start, end)``."""
    require_aware(start)
    require_aware(end)
    level = peak = 0
    for _, delta in _events(intervals, kind, start, end):
        level += delta
        peak = max(peak, level)
    return peak


def month_bounds(
    year: int, month: int, timezone: str = DEFAULT_TIMEZONE
) -> tuple[datetime, datetime]:
    """Return the tenant-local month ``year-month`` as an aware UTC ``[start, end)``."""
    tz = tenant_zone(timezone)
    start = datetime(year, month, 1, tzinfo=tz)
    end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def monthly_seats_used(
    intervals: Iterable[SignInInterval],
    year: int,
    month: int,
    timezone: str = DEFAULT_TIMEZONE,
) -> dict[SeatKind, int]:
    """Return the seats actually used per kind in the month: its peak concurrent sign-ins."""
    start, end = month_bounds(year, month, timezone)
    items = list(intervals)
    return {kind: peak_concurrency(items, kind, start, end) for kind in SeatKind}
