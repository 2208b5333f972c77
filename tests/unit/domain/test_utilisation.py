"""Seat utilisation: per-hour peak concurrency and monthly seats actually used."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from ccbridge.domain.leases.model import SeatKind
from ccbridge.domain.leases.utilisation import (
    SignInInterval,
    hourly_peaks,
    month_bounds,
    monthly_seats_used,
    peak_concurrency,
)

IN = SeatKind.INBOUND
IO = SeatKind.INBOUND_OUTBOUND
H0 = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)


def _at(minutes: int) -> datetime:
    return H0 + timedelta(minutes=minutes)


def test_hourly_peaks_per_kind() -> None:
    intervals = [
        SignInInterval(IN, _at(10), _at(50)),
        SignInInterval(IN, _at(20), _at(70)),
        SignInInterval(IN, _at(55), _at(65)),
        SignInInterval(IO, _at(30), None),  # still signed in
    ]
    peaks = hourly_peaks(intervals, H0, _at(180), {IN: 10, IO: 2})
    by = {(p.hour, p.kind): p for p in peaks}
    assert by[(H0, IN)].peak == 2
    assert by[(_at(60), IN)].peak == 2  # carried over from the previous hour plus one
    assert by[(_at(120), IN)].peak == 0
    assert [by[(_at(m), IO)].peak for m in (0, 60, 120)] == [1, 1, 1]
    assert by[(H0, IN)].ratio == 0.2
    assert len(peaks) == 6


def test_sign_out_and_sign_in_at_the_same_instant_do_not_overlap() -> None:
    intervals = [SignInInterval(IN, _at(0), _at(30)), SignInInterval(IN, _at(30), _at(60))]
    assert peak_concurrency(intervals, IN, H0, _at(60)) == 1


def test_intervals_are_clipped_to_the_window() -> None:
    intervals = [SignInInterval(IN, H0 - timedelta(days=1), _at(5))]
    peaks = hourly_peaks(intervals, H0, _at(60))
    assert [p.peak for p in peaks if p.kind is IN] == [1]
    assert peak_concurrency(intervals, IN, _at(5), _at(60)) == 0


def test_monthly_seats_used_is_the_peak_of_the_tenant_local_month() -> None:
    # 30 Nov 23:00 in Shanghai is 15:00 UTC: inside November; 1 Dec 00:30 local is December.
    nov = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)
    dec = datetime(2026, 11, 30, 16, 30, tzinfo=UTC)
    intervals = [
        SignInInterval(IN, nov, nov + timedelta(minutes=30)),
        SignInInterval(IN, nov, nov + timedelta(minutes=30)),
        *(SignInInterval(IN, dec, dec + timedelta(hours=1)) for _ in range(3)),
        SignInInterval(IO, datetime(2026, 11, 2, 1, 0, tzinfo=UTC), None),
    ]
    assert monthly_seats_used(intervals, 2026, 11) == {IN: 2, IO: 1}
    assert monthly_seats_used(intervals, 2026, 12) == {IN: 3, IO: 1}


def test_month_bounds_wrap_the_year() -> None:
    start, end = month_bounds(2026, 12)
    assert start == datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
    assert end == datetime(2026, 12, 31, 16, 0, tzinfo=UTC)


_INTERVAL = st.builds(
    lambda a, d: SignInInterval(IN, _at(a), _at(a + d)),
    st.integers(0, 300),
    st.integers(1, 200),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(_INTERVAL, max_size=15))
def test_sweep_matches_brute_force(intervals: list[SignInInterval]) -> None:
    end = _at(300)
    minutes = range(300)

    def level(m: int) -> int:
        t = _at(m)
        return sum(1 for iv in intervals if iv.start <= t and (iv.end is None or t < iv.end))

    assert peak_concurrency(intervals, IN, H0, end) == max((level(m) for m in minutes), default=0)
    for p in hourly_peaks(intervals, H0, end):
        if p.kind is IN:
            first = int((p.hour - H0).total_seconds() // 60)
            assert p.peak == max(level(m) for m in range(first, first + 60))
