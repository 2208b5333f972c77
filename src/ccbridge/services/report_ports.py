"""Ports the report service reads through (implemented in ``ccbridge.db.repositories.reports``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Protocol

from ccbridge.domain.calls.model import CallRecord
from ccbridge.domain.kpis.tally import CallTally, SeatTally
from ccbridge.domain.reports.buckets import CallBucketKey, SeatBucketKey
from ccbridge.domain.reports.call_lines import CallLine
from ccbridge.domain.reports.model import ReportKind, StateSpan
from ccbridge.domain.reports.schedule import Period


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


@dataclass(frozen=True, slots=True)
class TallyState:
    """How far a tenant's 15-minute tallies are maintained (one row per tenant)."""

    tenant_id: str
    fingerprint: str
    """The thresholds the tallies were counted under; a change invalidates them."""
    covered_from: datetime
    """First UTC day the tallies cover; earlier days are computed from the raw rows."""
    calls_seen_at: datetime
    """Calls written before this instant (less a margin) are reflected or marked dirty."""
    spans_seen_id: int
    """State intervals up to this id are reflected or marked dirty."""
    open_spans: tuple[int, ...]
    """Ids of the state intervals that were open at the last pass (not in the tallies)."""


@dataclass(frozen=True, slots=True)
class TallyChanges:
    """What changed since a tenant's cursors: instant ranges touched, and the new cursors."""

    ranges: list[tuple[datetime, datetime]]
    max_span_id: int
    open_spans: list[StateSpan]
    open_span_ids: tuple[int, ...]


class ReportTallyStore(Protocol):
    """The stored 15-minute tallies, their state and the change feed they are kept by."""

    async def tenant_ids(self) -> list[str]:
        """Every tenant (the maintenance job walks them)."""
        ...

    async def state(self, tenant_id: str) -> TallyState | None:
        """The tenant's maintenance state, or None before the first pass."""
        ...

    async def changes(
        self, tenant_id: str, calls_since: datetime, spans_after_id: int, open_ids: Sequence[int]
    ) -> TallyChanges:
        """Ranges touched by calls written since *calls_since*, intervals added after
        *spans_after_id* or closed among *open_ids*, and the calls whose after-call work closed."""
        ...

    async def cursor_start(self, tenant_id: str) -> tuple[int, tuple[int, ...]]:
        """The newest state-interval id and the open intervals' ids (a first pass's cursors)."""
        ...

    async def dirty_days(self, tenant_id: str) -> list[datetime]:
        """UTC days marked for recomputation, oldest first."""
        ...

    async def save_state(self, state: TallyState, dirty: Sequence[datetime]) -> None:
        """Store the state and mark *dirty* days, in one transaction."""
        ...

    async def replace_day(
        self,
        tenant_id: str,
        day_start: datetime,
        calls: Mapping[CallBucketKey, CallTally],
        seats: Mapping[SeatBucketKey, SeatTally],
        lines: Sequence[CallLine] = (),
    ) -> None:
        """Replace one UTC day's tallies and call lines (the calls counting in it) and clear
        its dirty mark, in one transaction; a line of these calls kept under another day is
        dropped (a call has one line)."""
        ...

    async def read_lines(
        self, tenant_id: str, ranges: Sequence[tuple[datetime, datetime]]
    ) -> list[CallLine]:
        """Stored lines of the calls counting in any of the ``[start, end)`` ranges."""
        ...

    async def read(
        self,
        tenant_id: str,
        start: datetime,
        end: datetime,
        by_agent: bool = False,
        *,
        calls: bool = True,
        seats: bool = True,
    ) -> tuple[dict[CallBucketKey, CallTally], dict[SeatBucketKey, SeatTally]]:
        """Stored tallies with bucket start in ``[start, end)``; call tallies per agent with
        *by_agent*, else the per-group sums (agent ``*``); *calls*/*seats* off skip a half."""
        ...


class ArchiveState(StrEnum):
    """Where a scheduled report's generation stands."""

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ReportArchive:
    """A report generated for a completed period, with its progress and checksum."""

    id: str
    tenant_id: str
    report: ReportKind
    period: Period
    first_day: date
    last_day: date
    format: str
    state: ArchiveState
    progress: int
    """0-100 while running; 100 when done."""
    rows: int | None
    size: int | None
    sha256: str | None
    error: str | None
    created_at: datetime
    updated_at: datetime


class ReportArchiveStore(Protocol):
    """Archived reports; the (tenant, report, period, first day) key makes a period's run once."""

    async def tenant_ids(self) -> list[str]:
        """Every tenant (the schedule walks them)."""
        ...

    async def claim(self, archive: ReportArchive, stale_before: datetime) -> ReportArchive | None:
        """Insert *archive* as running, or take over a failed one or one left running since
        before *stale_before*; None when it is done or another runner holds it."""
        ...

    async def progress(self, archive_id: str, progress: int, at: datetime) -> None:
        """Record how far the generation is."""
        ...

    async def finish(
        self, archive_id: str, body: bytes, sha256: str, rows: int, at: datetime
    ) -> None:
        """Store the file and its checksum; the archive is done."""
        ...

    async def fail(self, archive_id: str, error: str, at: datetime) -> None:
        """Mark the generation failed (the next pass retries it)."""
        ...

    async def list(
        self, tenant_id: str, report: ReportKind | None, period: Period | None, limit: int
    ) -> list[ReportArchive]:
        """The tenant's archives, newest period first."""
        ...

    async def get(self, tenant_id: str, archive_id: str) -> ReportArchive | None:
        """One of the tenant's archives (None for another tenant's)."""
        ...

    async def body(self, tenant_id: str, archive_id: str) -> bytes | None:
        """The archived file of a done archive of the tenant."""
        ...
