"""Working days, holidays, make-up days and tenant-local dates."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from ccbridge.domain.calendar import (
    CalendarFault,
    CalendarYear,
    WorkingCalendar,
    add_working_days,
    calendar_faults,
    is_working_day,
    local_date,
    merge_years,
    working_days_between,
)

NATIONAL_DAY = {date(2026, 10, d) for d in range(1, 8)}


def test_weekends_are_not_working_days() -> None:
    assert is_working_day(date(2026, 11, 20))  # Friday
    assert not is_working_day(date(2026, 11, 21))  # Saturday
    assert not is_working_day(date(2026, 11, 22))  # Sunday


def test_holiday_and_makeup_day() -> None:
    assert not is_working_day(date(2026, 10, 1), NATIONAL_DAY)
    assert is_working_day(date(2026, 10, 10), NATIONAL_DAY, {date(2026, 10, 10)})  # Saturday 调休


@pytest.mark.parametrize(
    ("start", "n", "expected"),
    [
        (date(2026, 11, 23), 0, date(2026, 11, 23)),
        (date(2026, 11, 23), 1, date(2026, 11, 24)),  # Mon -> Tue
        (date(2026, 11, 20), 1, date(2026, 11, 23)),  # Fri -> Mon
        (date(2026, 11, 21), 1, date(2026, 11, 23)),  # Sat -> Mon
        (date(2026, 11, 23), 7, date(2026, 12, 2)),  # Mon -> Wed next week
        (date(2026, 11, 20), 7, date(2026, 12, 1)),  # over one weekend
    ],
)
def test_add_working_days(start: date, n: int, expected: date) -> None:
    assert add_working_days(start, n) == expected
    assert working_days_between(start, expected) == n


def test_add_working_days_skips_holidays() -> None:
    # Tue 29 Sep + 2 WD: Wed 30 Sep, then the Golden Week, Sat 10 Oct is a make-up day.
    assert add_working_days(date(2026, 9, 29), 2, NATIONAL_DAY) == date(2026, 10, 8)
    makeup = {date(2026, 10, 10)}
    assert add_working_days(date(2026, 10, 9), 1, NATIONAL_DAY, makeup) == date(2026, 10, 10)


def test_negative_days_rejected() -> None:
    with pytest.raises(ValueError, match="n must be"):
        add_working_days(date(2026, 1, 1), -1)


def test_local_date_uses_shanghai_by_default() -> None:
    late_utc = datetime(2026, 11, 23, 17, 30, tzinfo=UTC)  # 01:30 on the 24th in Shanghai
    assert local_date(late_utc) == date(2026, 11, 24)
    assert local_date(late_utc, "Europe/Berlin") == date(2026, 11, 23)


def test_naive_datetime_is_rejected() -> None:
    with pytest.raises(ValueError, match="aware"):
        local_date(datetime(2026, 11, 23, 12, 0))  # noqa: DTZ001


def test_a_well_formed_year_has_no_faults_and_weekend_holidays_are_accepted() -> None:
    holidays = [date(2026, 10, d) for d in range(1, 8)]  # includes Sat 3 and Sun 4
    makeup = [date(2026, 9, 20), date(2026, 10, 10)]  # Sunday, Saturday
    assert calendar_faults(2026, holidays, makeup) == []


def test_every_faulty_date_is_named_at_once() -> None:
    faults = calendar_faults(
        2026,
        [date(2026, 10, 1), date(2027, 1, 1)],
        [date(2026, 10, 1), date(2026, 10, 9), date(2025, 12, 27), date(2026, 10, 10)],
    )
    assert faults == [
        CalendarFault("holidays[1]", "2027-01-01 is not in 2026"),
        CalendarFault("makeup_workdays[0]", "2026-10-01 is also listed as a holiday"),
        CalendarFault(
            "makeup_workdays[1]", "2026-10-09 is a Friday: a make-up working day is a weekend day"
        ),
        CalendarFault("makeup_workdays[2]", "2025-12-27 is not in 2026"),
    ]


def test_merged_years_count_holidays_and_makeup_days_and_know_what_is_loaded() -> None:
    cal = merge_years([CalendarYear(2026, tuple(sorted(NATIONAL_DAY)), (date(2026, 10, 10),))])
    assert cal.years == frozenset({2026})
    assert not cal.is_working_day(date(2026, 10, 5))
    assert cal.is_working_day(date(2026, 10, 10))  # Saturday 调休
    assert cal.add_working_days(date(2026, 9, 30), 2) == date(2026, 10, 9)
    assert cal.missing_years(date(2026, 12, 28), date(2027, 1, 6)) == [2027]
    assert cal.missing_years(date(2026, 1, 5), date(2026, 1, 6)) == []
    assert WorkingCalendar().missing_years(date(2026, 12, 31), date(2028, 1, 1)) == [
        2026,
        2027,
        2028,
    ]
