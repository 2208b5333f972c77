"""The platform's working-day calendar (holidays and 调休 make-up days) kept in the database,
and the contract notice periods counted on it in each tenant's own time zone."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

import structlog

from ccbridge.domain.access import AccessDeniedError, Principal, tenant_not_found
from ccbridge.domain.calendar import (
    CalendarFault,
    CalendarYear,
    WorkingCalendar,
    calendar_faults,
    local_date,
    merge_years,
)
from ccbridge.domain.leases.model import ChangeKind, earliest_effective_date
from ccbridge.errors import CcbridgeError, ErrorCode
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.calendar_ports import CalendarRecord, CalendarRepo
from ccbridge.services.ports import AccessUnitOfWork

log = structlog.get_logger(__name__)

CALENDAR_TTL_SECONDS = 60.0
"""How long a year read from the database is trusted; a PUT in this process refreshes it at
once, a change made elsewhere (another process, ``ccbridge calendar import``) within this."""

NOTICE_HORIZON_DAYS = 31
"""The longest notice (7 working days around a 9-day Spring Festival) ends within this many
days, so the years it touches are the ones the calendar must hold."""


@dataclass(frozen=True, slots=True)
class CalendarView:
    """One year as the API shows it; ``loaded`` False means plain Monday-to-Friday."""

    year: int
    holidays: tuple[date, ...]
    makeup_days: tuple[date, ...]
    loaded: bool
    updated_at: datetime | None = None
    updated_by: str | None = None


@dataclass(frozen=True, slots=True)
class Notice:
    """The earliest date a change may take effect, and whether a loaded calendar counted it."""

    earliest: date
    calendar_loaded: bool


@dataclass(frozen=True, slots=True)
class Coverage:
    """Which years are stored, and which of the years notices now reach are not."""

    loaded_years: list[int]
    missing_years: list[int]


class NoticeCalendar(Protocol):
    """Count a change's notice period on the working-day calendar."""

    async def notice(self, kind: ChangeKind, requested_at: datetime, timezone: str) -> Notice:
        """Return the earliest effective date, counted from the tenant-local request date."""
        ...


class WorkingDaysSource(Protocol):
    """Hand out the working-day calendar for a span of dates."""

    async def calendar(self, start: date, end: date) -> WorkingCalendar:
        """The calendar for the years from ``start`` to ``end`` (those loaded)."""
        ...


class TenantZones(Protocol):
    """Say which time zone a tenant's dates are in."""

    async def zone_of(self, tenant_id: str) -> str:
        """Return the tenant's IANA zone; 404 for an unknown tenant."""
        ...


class TenantZoneReader:
    """``TenantZones`` over the tenant store."""

    def __init__(self, uow: Callable[[], AccessUnitOfWork]) -> None:
        self._uow = uow

    async def zone_of(self, tenant_id: str) -> str:
        """Return the zone from the tenant's profile (404 when there is no such tenant)."""
        async with self._uow() as uow:
            tenant = await uow.tenants.get(tenant_id)
        if tenant is None:
            raise tenant_not_found(tenant_id)
        return tenant.timezone


class CalendarInvalidError(CcbridgeError):
    """A calendar year with faulty dates; ``errors`` names each one. Nothing was stored."""

    code = ErrorCode.VALIDATION
    status = 422
    title = "Invalid calendar"

    def __init__(self, faults: Sequence[CalendarFault], prefix: str = "") -> None:
        self.faults = list(faults)
        fields = [f"{prefix}{f.field}" for f in self.faults]
        super().__init__(
            f"the calendar has {len(fields)} faulty date(s): {', '.join(fields)}", field=fields[0]
        )
        self.errors = [
            {"field": name, "message": f.message}
            for name, f in zip(fields, self.faults, strict=True)
        ]

    def at(self, prefix: str) -> CalendarInvalidError:
        """The same faults with their fields under ``prefix`` (``body.`` for the HTTP API)."""
        return CalendarInvalidError(self.faults, prefix)


class CalendarService:
    """Read the calendar (cached per year), let the platform admin replace a year (audited),
    count notice periods on it, and say once in the log when a year needed is missing."""

    def __init__(
        self,
        repo: CalendarRepo,
        audit: AuditRecorder,
        now: Callable[[], datetime],
        *,
        ttl_seconds: float = CALENDAR_TTL_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._repo = repo
        self._audit = audit
        self._now = now
        self._ttl = ttl_seconds
        self._monotonic = monotonic
        self._cache: dict[int, tuple[float, CalendarRecord | None]] = {}
        self._warned: set[int] = set()

    async def _years(self, years: range) -> dict[int, CalendarRecord | None]:
        """Return each year from the cache, reading the stale or absent ones in one query."""
        clock = self._monotonic()
        stale = [y for y in years if y not in self._cache or clock - self._cache[y][0] > self._ttl]
        if stale:
            found = {r.days.year: r for r in await self._repo.get_years(stale)}
            for year in stale:
                self._cache[year] = (clock, found.get(year))
        return {y: self._cache[y][1] for y in years}

    async def get(self, year: int) -> CalendarView:
        """Return the stored year, or an empty one with ``loaded`` False."""
        return _view(year, (await self._years(range(year, year + 1)))[year])

    async def put(
        self, who: Principal, year: int, holidays: Sequence[date], makeup_days: Sequence[date]
    ) -> CalendarView:
        """Replace the year (platform admin); every faulty date is refused at once; audited."""
        if not who.is_platform:
            raise AccessDeniedError("only the platform admin may change the working-day calendar")
        faults = calendar_faults(year, holidays, makeup_days)
        if faults:
            raise CalendarInvalidError(faults)
        before = await self.get(year)
        days = CalendarYear(year, tuple(sorted(set(holidays))), tuple(sorted(set(makeup_days))))
        record = CalendarRecord(days, self._now(), who.actor)
        await self._repo.put(record)
        self._cache[year] = (self._monotonic(), record)
        self._warned.discard(year)
        await self._audit.record(
            who,
            None,
            "calendar.update",
            "calendar",
            str(year),
            {
                **_dates(days.holidays, days.makeup_days),
                "before": _dates(before.holidays, before.makeup_days) if before.loaded else None,
            },
        )
        return _view(year, record)

    async def calendar(self, start: date, end: date) -> WorkingCalendar:
        """The calendar for the years from ``start`` to ``end`` (those stored)."""
        found = await self._years(range(start.year, end.year + 1))
        return merge_years(r.days for r in found.values() if r is not None)

    async def notice(self, kind: ChangeKind, requested_at: datetime, timezone: str) -> Notice:
        """Count the notice from the tenant-local date; logs once per year it lacks."""
        today = local_date(requested_at, timezone)
        cal = await self.calendar(today, today + timedelta(days=NOTICE_HORIZON_DAYS))
        earliest = earliest_effective_date(
            kind, requested_at, cal.holidays, cal.makeup_days, timezone
        )
        missing = cal.missing_years(today, earliest)
        self._warn(missing)
        return Notice(earliest, calendar_loaded=not missing)

    async def coverage(self, today: date) -> Coverage:
        """Stored years, and the years a notice asked for ``today`` may reach but that are not."""
        loaded = await self._repo.loaded_years()
        horizon = today + timedelta(days=NOTICE_HORIZON_DAYS)
        missing = [y for y in range(today.year, horizon.year + 1) if y not in loaded]
        self._warn(missing)
        return Coverage(loaded, missing)

    def _warn(self, missing: list[int]) -> None:
        """Log each missing year once per process: notices then count Monday to Friday only."""
        for year in missing:
            if year in self._warned:
                continue
            self._warned.add(year)
            log.warning(
                "working_calendar_missing",
                year=year,
                effect="holidays and make-up days of this year are not counted",
                hint=load_hint(year),
            )


def load_hint(year: int) -> str:
    """How an operator loads a missing year (the log line and ``/readyz`` say the same)."""
    return (
        f"load it with `ccbridge calendar import docs/calendars/cn-{year}.yaml` (files there "
        f"follow the State Council's notice; write one if {year} has none yet) or "
        f"PUT /api/v1/calendar/{year}; see docs/install.md#working-day-calendar"
    )


def _view(year: int, record: CalendarRecord | None) -> CalendarView:
    if record is None:
        return CalendarView(year, (), (), loaded=False)
    days = record.days
    return CalendarView(
        year, days.holidays, days.makeup_days, True, record.updated_at, record.updated_by
    )


def _dates(holidays: Sequence[date], makeup_days: Sequence[date]) -> dict[str, list[str]]:
    return {
        "holidays": [d.isoformat() for d in holidays],
        "makeup_workdays": [d.isoformat() for d in makeup_days],
    }
