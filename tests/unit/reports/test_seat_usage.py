"""Seats used per month: peak concurrent sign-ins, or the average of the daily peaks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

from ccbridge.domain.billing.seat_usage import SeatUsage, seats_used
from ccbridge.domain.leases.model import SeatKind
from ccbridge.domain.leases.utilisation import SignInInterval, month_bounds

CST = timezone(timedelta(hours=8))
START, END = month_bounds(2026, 4)  # 30 days


def shift(day: int, hours: tuple[int, int], kind: SeatKind = SeatKind.INBOUND) -> SignInInterval:
    lo = datetime(2026, 4, day, hours[0], tzinfo=CST).astimezone(UTC)
    hi = datetime(2026, 4, day, hours[1], tzinfo=CST).astimezone(UTC)
    return SignInInterval(kind, lo, hi)


# Three agents overlap on 1 April; on ten days one agent works; an outbound seat on 2 April.
INTERVALS = [shift(1, (9, 18)), shift(1, (10, 12)), shift(1, (11, 13))]
INTERVALS += [shift(d, (9, 18)) for d in range(2, 12)]
INTERVALS += [shift(2, (9, 10), SeatKind.INBOUND_OUTBOUND)]


def test_peak_is_the_largest_number_signed_in_at_once() -> None:
    assert seats_used(INTERVALS, SeatKind.INBOUND, START, END, SeatUsage.PEAK) == 3
    assert seats_used(INTERVALS, SeatKind.INBOUND_OUTBOUND, START, END, SeatUsage.PEAK) == 1


def test_seat_days_average_the_daily_peaks_over_the_month() -> None:
    # Daily peaks: 3 on the 1st, 1 on each of the 2nd..11th (10 days): 13 / 30 = 0.43.
    used = seats_used(INTERVALS, SeatKind.INBOUND, START, END, SeatUsage.SEAT_DAYS)
    assert used == Decimal("0.43")
    # One day's outbound seat: 1 / 30 = 0.03.
    assert seats_used(
        INTERVALS, SeatKind.INBOUND_OUTBOUND, START, END, SeatUsage.SEAT_DAYS
    ) == Decimal("0.03")
