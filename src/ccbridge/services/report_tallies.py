"""Keep the 15-minute report tallies and hand reports the buckets of a window (ADR 0019).

Stored tallies are a cache with an exact validity rule: a UTC day is read from the store only
when it lies in the tenant's coverage, is not marked dirty and nothing touching it was written
since the last pass (the report asks the change feed itself); every other day, and the state
intervals still open, are counted from the raw rows. So a report is the same whether the
maintenance job ran a second or a week ago, only faster when it did.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta

import structlog

from ccbridge.domain.calls.model import CallRecord
from ccbridge.domain.kpis.settings import KpiSettings
from ccbridge.domain.kpis.tally import CallTally, SeatTally
from ccbridge.domain.reports.buckets import (
    CallBucketKey,
    SeatBucketKey,
    by_group,
    call_buckets,
    merge_calls,
    merge_seats,
    seat_buckets,
)
from ccbridge.domain.reports.call_lines import CallLine, PrefixCache, call_lines
from ccbridge.domain.reports.model import StateSpan
from ccbridge.domain.reports.seat_time import CALL_REACH
from ccbridge.domain.reports.service_level import WRAP_TOLERANCE, wrap_by_call
from ccbridge.services.report_ports import ReportSource, ReportTallyStore, TallyState

log = structlog.get_logger(__name__)

DAY = timedelta(days=1)
WRITE_MARGIN = timedelta(minutes=2)
"""A call row stamped this long before it commits is still seen by the next pass."""
DAYS_PER_PASS = 31
"""Most days one pass recomputes per tenant (a settings change or rebuild spreads out)."""

Buckets = tuple[dict[CallBucketKey, CallTally], dict[SeatBucketKey, SeatTally]]


LINE_FORMAT = 1
"""Version of the stored call lines; a new one invalidates what was stored under the old."""


def fingerprint(cfg: KpiSettings) -> str:
    """What stored tallies and lines depend on: the thresholds, and for the lines' local
    time stamps and hour the zone (buckets are UTC quarter hours), and the line format."""
    return (
        f"T{cfg.service_level_seconds}/S{cfg.short_abandon_seconds}/B{cfg.billable_seconds}"
        f"/L{LINE_FORMAT}/{cfg.timezone}"
    )


def utc_day(at: datetime) -> datetime:
    """Midnight UTC of the day holding *at*."""
    u = at.astimezone(UTC)
    return u.replace(hour=0, minute=0, second=0, microsecond=0)


def days_touched(ranges: Iterable[tuple[datetime, datetime]]) -> set[datetime]:
    """Every UTC day any of the instant ranges overlaps."""
    out: set[datetime] = set()
    for lo, hi in ranges:
        day = utc_day(lo)
        while day <= hi:
            out.add(day)
            day += DAY
    return out


def _at(rec: CallRecord) -> datetime:
    return rec.queued_at or rec.started_at


class ReportTallies:
    """Compute buckets from raw rows, keep the stored ones current, and serve a window's."""

    def __init__(
        self,
        source: ReportSource,
        store: ReportTallyStore | None,
        settings_of: Callable[[str], Awaitable[KpiSettings]],
        now: Callable[[], datetime],
        days_per_pass: int = DAYS_PER_PASS,
        write_margin: timedelta = WRITE_MARGIN,
    ) -> None:
        """Without *store* every window is computed from the raw rows."""
        self._margin = write_margin
        self._source = source
        self._store = store
        self._settings_of = settings_of
        self._now = now
        self._days_per_pass = days_per_pass
        self.days_from_store = 0
        """UTC days reports read from stored tallies (the rest were computed from raw rows)."""
        self.lines_from_store = 0
        """UTC days reports read stored call lines for."""

    async def live(
        self,
        tenant_id: str,
        cfg: KpiSettings,
        lo: datetime,
        hi: datetime,
        until: datetime,
        closed_only: bool = False,
        lines: list[CallLine] | None = None,
    ) -> Buckets:
        """Buckets of ``[lo, hi)`` from the raw rows (seat time up to *until*); with *lines*,
        the report lines of the calls counting in it are appended there."""
        work = await self._source.calls(tenant_id, lo - CALL_REACH, hi)
        calls = [c for c in work if lo <= _at(c) < hi]
        if lines is not None:
            lines.extend(call_lines(calls, cfg))
        ends = [c.ended_at for c in calls if c.ended_at is not None]
        span_lo = min([lo, *ends]) - WRAP_TOLERANCE
        span_hi = max([hi, *ends]) + WRAP_TOLERANCE
        spans = await self._source.spans(tenant_id, span_lo, span_hi)
        by_call = call_buckets(calls, wrap_by_call(calls, spans), cfg)
        if closed_only:
            spans = [s for s in spans if s.ended_at is not None]
        return by_call, seat_buckets(work, spans, cfg, lo, min(hi, until))

    async def _stored_days(
        self, tenant_id: str, cfg: KpiSettings, start: datetime, end: datetime
    ) -> tuple[set[datetime], list[StateSpan]]:
        """The UTC days of ``[start, end)`` whose stored tallies and lines are valid (covered,
        counted under these settings, not dirty, nothing written into them since the last
        pass), and the state intervals open at the last pass."""
        stored: set[datetime] = set()
        state = await self._store.state(tenant_id) if self._store else None
        if self._store is None or state is None or state.fingerprint != fingerprint(cfg):
            return stored, []
        changes = await self._store.changes(
            tenant_id, state.calls_seen_at - self._margin, state.spans_seen_id, state.open_spans
        )
        bad = set(await self._store.dirty_days(tenant_id)) | days_touched(changes.ranges)
        day = utc_day(start)
        while day < end:
            if day >= state.covered_from and day not in bad:
                stored.add(day)
            day += DAY
        return stored, changes.open_spans

    async def lines(
        self, tenant_id: str, cfg: KpiSettings, start: datetime, end: datetime
    ) -> list[CallLine]:
        """The report lines of the calls counting in ``[start, end)``: stored where valid,
        else derived from the raw rows (unordered; the reports sort them)."""
        stored, _ = await self._stored_days(tenant_id, cfg, start, end)
        pieces = _pieces(start, end, stored)
        self.lines_from_store += len(stored)
        out: list[CallLine] = []
        if stored and self._store is not None:
            out = await self._store.read_lines(
                tenant_id, [(lo, hi) for lo, hi, keep in pieces if keep]
            )
        numbers = PrefixCache()
        for lo, hi, keep in pieces:
            if not keep:
                work = await self._source.calls(tenant_id, lo - CALL_REACH, hi)
                out.extend(call_lines((c for c in work if lo <= _at(c) < hi), cfg, numbers))
        return out

    async def buckets(
        self,
        tenant_id: str,
        cfg: KpiSettings,
        start: datetime,
        end: datetime,
        until: datetime,
        by_agent: bool = False,
        want_calls: bool = True,
        want_seats: bool = True,
    ) -> Buckets:
        """The buckets of ``[start, end)``: stored where valid, else computed from raw rows.

        Call buckets are per agent with *by_agent*, else summed per group (``ANY_AGENT``);
        *want_calls* / *want_seats* off leaves that half empty (not read from the store).
        """
        stored, still_open = await self._stored_days(tenant_id, cfg, start, end)
        pieces = _pieces(start, end, stored)
        calls: dict[CallBucketKey, CallTally] = {}
        seats: dict[SeatBucketKey, SeatTally] = {}
        self.days_from_store += len(stored)
        if stored and self._store is not None:
            sc, ss = await self._store.read(
                tenant_id, start, end, by_agent, calls=want_calls, seats=want_seats
            )
            if len(pieces) == 1:  # every day stored: nothing to leave out
                calls.update(sc)
                seats.update(ss)
            else:
                calls.update((k, t) for k, t in sc.items() if utc_day(k[0]) in stored)
                seats.update((k, t) for k, t in ss.items() if utc_day(k[0]) in stored)
        for lo, hi, keep in pieces:
            if keep:
                merge_seats(seats, seat_buckets([], still_open, cfg, lo, min(hi, until)))
            else:
                lc, ls = await self.live(tenant_id, cfg, lo, hi, until)
                merge_calls(calls, lc if by_agent else by_group(lc))
                merge_seats(seats, ls)
        return (calls if want_calls else {}), (seats if want_seats else {})

    async def refresh(self) -> int:
        """One maintenance pass over every tenant (the periodic job); days recomputed."""
        if self._store is None:
            return 0
        done = 0
        first_error: Exception | None = None
        for tenant_id in await self._store.tenant_ids():
            try:
                done += await self.refresh_tenant(tenant_id)
            except Exception as exc:  # one tenant's failure must not starve the others
                log.warning("report_tallies_failed", tenant=tenant_id, error=str(exc))
                first_error = first_error or exc
        if first_error is not None:
            raise first_error  # the job runner backs off and reports a database outage
        return done

    async def refresh_tenant(
        self,
        tenant_id: str,
        extend_to: datetime | None = None,
        recompute: tuple[datetime, datetime] | None = None,
        prefer: frozenset[datetime] = frozenset(),
    ) -> int:
        """Mark what changed since the last pass dirty, then recompute dirty days.

        Idempotent: a day is recomputed whole from raw rows and replaced in one transaction,
        so a pass run twice, or a pass interrupted, leaves the same tallies.
        With *extend_to*, coverage is widened back to that UTC day (all of it marked dirty);
        *recompute* marks the UTC days of an instant range dirty even if nothing changed;
        dirty days in *prefer* are recomputed first.
        """
        assert self._store is not None
        now = self._now()
        cfg = await self._settings_of(tenant_id)
        fp = fingerprint(cfg)
        state = await self._store.state(tenant_id)
        dirty: set[datetime] = set()
        if state is None:
            top, open_ids = await self._store.cursor_start(tenant_id)
            state = TallyState(tenant_id, fp, utc_day(now), now, top, open_ids)
            dirty.add(utc_day(now))
        changes = await self._store.changes(
            tenant_id, state.calls_seen_at - self._margin, state.spans_seen_id, state.open_spans
        )
        covered_from = state.covered_from
        if extend_to is not None and utc_day(extend_to) < covered_from:
            covered_from = utc_day(extend_to)
            dirty |= _days(covered_from, state.covered_from)
        if state.fingerprint != fp:
            dirty |= _days(covered_from, utc_day(now) + DAY)
        dirty |= {d for d in days_touched(changes.ranges) if d >= covered_from}
        first_up = set(prefer)
        if recompute is not None:
            first_up |= {d for d in days_touched([recompute]) if d >= covered_from}
            dirty |= first_up
        await self._store.save_state(
            TallyState(
                tenant_id, fp, covered_from, now, changes.max_span_id, changes.open_span_ids
            ),
            sorted(dirty),
        )
        pending = await self._store.dirty_days(tenant_id)
        todo = sorted(pending, key=lambda d: (d not in first_up, d))[: self._days_per_pass]
        for day in todo:
            lines: list[CallLine] = []
            calls, seats = await self.live(tenant_id, cfg, day, day + DAY, day + DAY, True, lines)
            await self._store.replace_day(
                tenant_id, day, {**calls, **by_group(calls)}, seats, lines
            )
        if todo:
            log.info("report_tallies_recomputed", tenant=tenant_id, days=len(todo))
        return len(todo)

    async def rebuild(self, tenant_id: str, first: datetime, last: datetime) -> int:
        """Recompute the UTC days ``first``..``last`` now (``ccbridge reports rebuild``),
        widening the coverage back to *first*; the days between the old coverage and the
        range are left marked for the job. Returns the days recomputed."""
        assert self._store is not None
        wanted = frozenset(days_touched([(first, last)]))
        done = await self.refresh_tenant(tenant_id, extend_to=first, recompute=(first, last))
        for _ in range(len(wanted) // self._days_per_pass + 2):
            if not set(await self._store.dirty_days(tenant_id)) & wanted:
                break
            done += await self.refresh_tenant(tenant_id, prefer=frozenset(wanted))
        return done


def _pieces(
    start: datetime, end: datetime, stored: set[datetime]
) -> list[tuple[datetime, datetime, bool]]:
    """``[start, end)`` cut at UTC midnights into runs of stored (True) and raw days."""
    pieces: list[tuple[datetime, datetime, bool]] = []
    day = utc_day(start)
    while day < end:
        lo, hi, keep = max(start, day), min(end, day + DAY), day in stored
        if pieces and pieces[-1][2] == keep and pieces[-1][1] == lo:
            pieces[-1] = (pieces[-1][0], hi, keep)
        else:
            pieces.append((lo, hi, keep))
        day += DAY
    return pieces


def _days(first: datetime, end: datetime) -> set[datetime]:
    out = set()
    day = first
    while day < end:
        out.add(day)
        day += DAY
    return out
