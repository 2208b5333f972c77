"""The working-day calendar in SQL (implements ``services.calendar_ports.CalendarRepo``)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.db.calendar_tables import WorkingCalendarRow
from ccbridge.domain.calendar import CalendarYear
from ccbridge.services.calendar_ports import CalendarRecord


class CalendarRepository:
    """One row per stored year; a PUT replaces the whole year."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        """Keep the factory; every method uses its own short transaction."""
        self._sessions = session_factory

    async def get_years(self, years: Iterable[int]) -> list[CalendarRecord]:
        """Return the stored years among ``years``, ascending."""
        wanted = sorted(set(years))
        if not wanted:
            return []
        async with self._sessions() as session:
            rows = await session.scalars(
                select(WorkingCalendarRow)
                .where(WorkingCalendarRow.year.in_(wanted))
                .order_by(WorkingCalendarRow.year)
            )
            return [_record(row) for row in rows]

    async def put(self, record: CalendarRecord) -> None:
        """Create or replace the record's year."""
        days = record.days
        row = WorkingCalendarRow(
            year=days.year,
            holidays=[d.isoformat() for d in days.holidays],
            makeup_workdays=[d.isoformat() for d in days.makeup_days],
            updated_at=record.updated_at,
            updated_by=record.updated_by,
        )
        async with self._sessions() as session, session.begin():
            await session.merge(row)

    async def loaded_years(self) -> list[int]:
        """List every stored year, ascending."""
        async with self._sessions() as session:
            years = await session.scalars(
                select(WorkingCalendarRow.year).order_by(WorkingCalendarRow.year)
            )
            return list(years)


def _record(row: WorkingCalendarRow) -> CalendarRecord:
    days = CalendarYear(
        row.year,
        tuple(date.fromisoformat(d) for d in row.holidays),
        tuple(date.fromisoformat(d) for d in row.makeup_workdays),
    )
    return CalendarRecord(days, row.updated_at, row.updated_by)
