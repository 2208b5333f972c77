"""Working days and tenant-local dates: Mon–Fri minus holidays, plus make-up working days."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True, slots=True)
class WorkingCalendar:
    """The platform's holidays and make-up days for the ``years`` loaded; other years count
    Monday to Friday only, so callers can say when a result rests on an unloaded year."""

    holidays: frozenset[date] = frozenset()
    makeup_days: frozenset[date] = frozenset()
    years: frozenset[int] = frozenset()

    def is_working_day(self, day: date) -> bool:
        """Say whether ``day`` is a working day under this calendar."""
        return is_working_day(day, self.holidays, self.makeup_days)

    def add_working_days(self, day: date, n: int) -> date:
        """Return the ``n``-th working day after ``day`` under this calendar."""
        return add_working_days(day, n, self.holidays, self.makeup_days)

    def missing_years(self, start: date, end: date) -> list[int]:
        """List the years in ``[start, end]`` this calendar has no holidays for."""
        return [y for y in range(start.year, end.year + 1) if y not in self.years]


@dataclass(frozen=True, slots=True)
class CalendarYear:
    """One year's official arrangement: the holidays, and the weekend days worked (调休)."""

    year: int
    holidays: tuple[date, ...]
    makeup_days: tuple[date, ...]


@dataclass(frozen=True, slots=True)
class CalendarFault:
    """A date the calendar refuses; ``field`` is ``holidays[i]`` or ``makeup_workdays[i]``."""

    field: str
    message: str


def calendar_faults(
    year: int, holidays: Sequence[date], makeup_days: Sequence[date]
) -> list[CalendarFault]:
    """Every fault at once: a date outside ``year``, a make-up day on a weekday, a date that is
    both. A holiday on a weekend is allowed: the State Council lists whole ranges."""
    faults: list[CalendarFault] = []
    for i, day in enumerate(holidays):
        if day.year != year:
            faults.append(CalendarFault(f"holidays[{i}]", f"{day} is not in {year}"))
    off = set(holidays)
    for i, day in enumerate(makeup_days):
        field = f"makeup_workdays[{i}]"
        if day.year != year:
            faults.append(CalendarFault(field, f"{day} is not in {year}"))
        elif day in off:
            faults.append(CalendarFault(field, f"{day} is also listed as a holiday"))
        elif day.weekday() < 5:
            faults.append(
                CalendarFault(field, f"{day} is a {day:%A}: a make-up working day is a weekend day")
            )
    return faults


def merge_years(years: Iterable[CalendarYear]) -> WorkingCalendar:
    """Join loaded years into one calendar (each year is stored whole)."""
    loaded = list(years)
    return WorkingCalendar(
        frozenset(d for y in loaded for d in y.holidays),
        frozenset(d for y in loaded for d in y.makeup_days),
        frozenset(y.year for y in loaded),
    )


WEEKDAYS_ONLY = WorkingCalendar()
"""No year loaded: Monday to Friday are the working days."""
