"""Today's service-level figures per skill group, kept current call by call.

Recomputing the day from the database on every change costs seconds for a busy tenant
(bench/wallboard.py), so the day's calls are read once (``ReportService.today_calls``, the
reports' own read) and each call's KPI facts are kept; a call event replaces that call's facts
from the live tracker's record. The figures are then the reports' definitions over those
facts (``call_facts``, ``CallTally``, the KPI catalogue). The day is read again at local
midnight, every 5 minutes (what another process or a backfill wrote), and whenever a changed
call is no longer in memory.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from ccbridge.domain.calls.model import CallRecord
from ccbridge.domain.journal.types import StoredEvent
from ccbridge.domain.kpis.catalogue import evaluate
from ccbridge.domain.kpis.facts import CallFacts, call_facts
from ccbridge.domain.kpis.settings import KpiSettings
from ccbridge.domain.reports.service_level import group_tallies
from ccbridge.services.reports import DayCalls, Window

TODAY_KPIS = ("offered", "answered", "abandoned", "service_level")
"""The service-level report's KPIs a wallboard shows for the day so far."""
FULL_RELOAD_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class TodayFigures:
    """The day so far per skill-group queue."""

    settings: KpiSettings
    by_queue: dict[str, dict[str, float | None]]
    """KPI values (``TODAY_KPIS``) by the calls' skill group (the Asterisk queue name)."""


class DayCallsSource(Protocol):
    """The day's calls as the reports read them (``ReportService``)."""

    async def today_calls(self, tenant_id: str) -> DayCalls:
        """The tenant-local day so far."""
        ...


@dataclass(slots=True)
class _Day:
    settings: KpiSettings
    window: Window
    facts: dict[str, CallFacts]
    loaded_at: float
    dirty: set[str] = field(default_factory=set)
    figures: TodayFigures | None = None


class DayFigures:
    """Per tenant: today's calls' facts, patched by call events, and the figures over them."""

    def __init__(
        self,
        source: DayCallsSource,
        lookup: Callable[[str], CallRecord | None],
        now: Callable[[], datetime],
        *,
        monotonic: Callable[[], float] = time.monotonic,
        full_reload: float = FULL_RELOAD_SECONDS,
    ) -> None:
        """*lookup* is the live tracker's record of a call (``None`` once it forgot it)."""
        self._source = source
        self._lookup = lookup
        self._now = now
        self._monotonic = monotonic
        self._full_reload = full_reload
        self._days: dict[str, _Day] = {}
        self._reading: dict[str, set[str]] = {}
        """Calls changed while a tenant's day is being read (patched in after the read)."""
        self._read_locks: dict[str, asyncio.Lock] = {}
        """One read of a tenant's day at a time: a stream and the floor-alert job asking
        together share it (two reads at once would each replace the other's change set)."""
        self.reads = 0
        """Full reads of a day (a figure for tests and the bench)."""

    def on_events(self, events: Sequence[StoredEvent]) -> None:
        """Journal commit hook: note the calls whose facts changed."""
        for event in events:
            if event.call_id is not None and event.type.startswith("call."):
                day = self._days.get(event.tenant)
                if day is not None:
                    day.dirty.add(event.call_id)
                reading = self._reading.get(event.tenant)
                if reading is not None:
                    reading.add(event.call_id)

    async def figures(self, tenant_id: str) -> TodayFigures:
        """The tenant's figures now."""
        day = self._current(tenant_id)
        if day is None:
            async with self._read_locks.setdefault(tenant_id, asyncio.Lock()):
                day = self._current(tenant_id) or await self._read(tenant_id)
        if day.figures is None:
            tallies = group_tallies(day.facts.values())
            day.figures = TodayFigures(
                day.settings, {g: evaluate(TODAY_KPIS, t.inputs()) for g, t in tallies.items()}
            )
        return day.figures

    def _current(self, tenant_id: str) -> _Day | None:
        """The tenant's day patched up to now, or ``None`` when it must be read again."""
        day = self._days.get(tenant_id)
        if day is None or self._expired(day) or (day.dirty and not self._patch(tenant_id, day)):
            self._days.pop(tenant_id, None)  # a reader waiting for the lock reads it again
            return None
        return day

    def _expired(self, day: _Day) -> bool:
        now = self._now()
        stale = self._monotonic() - day.loaded_at >= self._full_reload
        return stale or not day.window.start <= now < day.window.end

    def _patch(self, tenant_id: str, day: _Day) -> bool:
        """Replace the facts of the changed calls; False when one is no longer in memory."""
        dirty, day.dirty = day.dirty, set()
        for call_id in dirty:
            rec = self._lookup(call_id)
            if rec is None:
                return False
            if rec.tenant != tenant_id:
                continue
            facts = call_facts(rec, day.settings)
            counted = rec.merged_into is None and day.window.start <= facts.at < day.window.end
            if counted:
                day.facts[call_id] = facts
            else:
                day.facts.pop(call_id, None)
        day.figures = None
        return True

    async def _read(self, tenant_id: str) -> _Day:
        self.reads += 1
        changed = self._reading[tenant_id] = set()
        try:
            loaded = await self._source.today_calls(tenant_id)
        finally:
            del self._reading[tenant_id]
        day = _Day(
            loaded.settings,
            loaded.window,
            {c.call_id: call_facts(c, loaded.settings) for c in loaded.calls},
            self._monotonic(),
            dirty=changed,
        )
        self._days[tenant_id] = day
        if changed:
            self._patch(tenant_id, day)  # a call gone from memory meanwhile: next read
        return day
