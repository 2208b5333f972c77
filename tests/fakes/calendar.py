"""In-memory calendar store, an audit log in a list, and a hand-driven monotonic clock."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ccbridge.domain.access import Principal
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.calendar_ports import CalendarRecord


class MemoryCalendars:
    """``CalendarRepo`` in a dict; ``reads`` counts the queries that reached it."""

    def __init__(self) -> None:
        self.rows: dict[int, CalendarRecord] = {}
        self.reads = 0

    async def get_years(self, years: Iterable[int]) -> list[CalendarRecord]:
        self.reads += 1
        return [self.rows[y] for y in sorted(set(years)) if y in self.rows]

    async def put(self, record: CalendarRecord) -> None:
        self.rows[record.days.year] = record

    async def loaded_years(self) -> list[int]:
        return sorted(self.rows)


class ListAudit(AuditRecorder):
    """Keep each audit entry as a tuple instead of writing it."""

    def __init__(self) -> None:
        self.entries: list[tuple[str, str | None, str, str, str, dict[str, Any]]] = []

    async def record(
        self,
        who: Principal,
        tenant_id: str | None,
        action: str,
        object_type: str,
        object_id: str,
        detail: dict[str, Any] | None = None,
    ) -> None:
        self.entries.append((who.actor, tenant_id, action, object_type, object_id, detail or {}))


class Ticker:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.value = 1000.0

    def __call__(self) -> float:
        return self.value
