"""What the working-day calendar needs from storage: one row per year, stored whole."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from ccbridge.domain.calendar import CalendarYear


@dataclass(frozen=True, slots=True)
class CalendarRecord:
    """A stored year of the platform calendar, with who set it and when."""

    days: CalendarYear
    updated_at: datetime
    updated_by: str


class CalendarRepo(Protocol):
    """Store the platform's working-day calendar, a year at a time."""

    async def get_years(self, years: Iterable[int]) -> list[CalendarRecord]:
        """Return the stored years among ``years`` (a year never set is absent)."""
        ...

    async def put(self, record: CalendarRecord) -> None:
        """Create or replace the record's year."""
        ...

    async def loaded_years(self) -> list[int]:
        """List every stored year, ascending."""
        ...
