"""How many seats a tenant "used" in a month (BILL-02 leaves it undefined; docs/billing.md).

- ``peak``: the month's largest number of seats of the kind signed in at once.
- ``seat_days``: each tenant-local day's peak, averaged over the days of the month; a seat
  used on 10 days of a 30-day month counts 0.33.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

from ccbridge.domain.calendar import tenant_zone
from ccbridge.domain.leases.model import SeatKind, SeatUsage
from ccbridge.domain.leases.utilisation import SignInInterval, peak_concurrency

HUNDREDTH = Decimal("0.01")


__all__ = ["SeatUsage", "seats_used"]


def seats_used(
    intervals: Sequence[SignInInterval],
    kind: SeatKind,
    start: datetime,
    end: datetime,
    usage: SeatUsage,
    timezone: str | None = None,
) -> Decimal:
    """Seats of ``kind`` used in ``[start, end)`` (a tenant-local month) under ``usage``."""
    if usage is SeatUsage.PEAK:
        return Decimal(peak_concurrency(intervals, kind, start, end))
    zone = tenant_zone(timezone)
    day = start.astimezone(zone).date()
    last = (end.astimezone(zone) - timedelta(microseconds=1)).date()
    total, days = 0, 0
    while day <= last:
        lo = datetime.combine(day, time(), zone)
        hi = datetime.combine(day + timedelta(days=1), time(), zone)
        total += peak_concurrency(intervals, kind, max(lo, start), min(hi, end))
        days += 1
        day += timedelta(days=1)
    return (Decimal(total) / Decimal(days)).quantize(HUNDREDTH, rounding=ROUND_HALF_UP)
