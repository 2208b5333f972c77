"""Ports the report service reads through (implemented in ``ccbridge.db.repositories.reports``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from ccbridge.domain.calls.model import CallRecord
from ccbridge.domain.reports.model import StateSpan


@dataclass(frozen=True, slots=True)
class StoredReportSettings:
    """A tenant's stored thresholds and templates as plain JSON-able values."""

    tenant_id: str
    thresholds: Mapping[str, Any]
    templates: Mapping[str, Any] = field(default_factory=dict)
    updated_at: datetime | None = None
    updated_by: str | None = None


class ReportSource(Protocol):
    """Call records and agent state history of one tenant, read for a report window."""

    async def calls(self, tenant_id: str, start: datetime, end: datetime) -> list[CallRecord]:
        """Calls started in ``[start, end)`` with their legs and transfers, oldest first."""
        ...

    async def spans(self, tenant_id: str, start: datetime, end: datetime) -> list[StateSpan]:
        """State intervals overlapping ``[start, end)`` (not clipped), by start time."""
        ...

    async def callers_before(self, tenant_id: str, since: datetime, before: datetime) -> set[str]:
        """Distinct callers of calls started in ``[since, before)`` (for new vs repeat)."""
        ...


class ReportSettingsStore(Protocol):
    """Per-tenant report settings."""

    async def get(self, tenant_id: str) -> StoredReportSettings | None:
        """The stored settings, or None while the defaults apply."""
        ...

    async def put(self, settings: StoredReportSettings) -> None:
        """Insert or replace the tenant's settings."""
        ...
