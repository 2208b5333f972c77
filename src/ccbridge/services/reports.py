"""The four contract reports per tenant: window in the tenant's zone, settings, explain, export."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields
from datetime import date, datetime, time, timedelta
from typing import Any

from ccbridge.domain.access import Principal
from ccbridge.domain.calendar import tenant_zone
from ccbridge.domain.calls.model import CallRecord
from ccbridge.domain.kpis.catalogue import BY_KEY, Basis
from ccbridge.domain.kpis.settings import KpiSettings
from ccbridge.domain.kpis.tally import CallTally
from ccbridge.domain.reports.buckets import roll_calls, roll_seats
from ccbridge.domain.reports.call_attributes import attributes_table
from ccbridge.domain.reports.call_lines import in_report_order
from ccbridge.domain.reports.intervals import Granularity, interval_start
from ccbridge.domain.reports.model import REPORT_TITLES, Dimension, ReportKind, StateSpan, Table
from ccbridge.domain.reports.operations import operations_table
from ccbridge.domain.reports.seat_detail import seat_detail_table
from ccbridge.domain.reports.seat_time import (
    CALL_REACH,
    SpanPiece,
    seat_time_table,
    span_pieces,
    tally_seats,
)
from ccbridge.domain.reports.service_level import (
    WRAP_TOLERANCE,
    service_level_table,
    tally_calls,
)
from ccbridge.domain.reports.template import ReportTemplate, Sheet, TemplateError, layout
from ccbridge.errors import CcbridgeError, ErrorCode
from ccbridge.report_format import to_csv, to_xlsx
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.calendar import TenantZones
from ccbridge.services.report_ports import (
    ReportSettingsStore,
    ReportSource,
    ReportTallyStore,
    StoredReportSettings,
)
from ccbridge.services.report_tallies import WRITE_MARGIN, ReportTallies

MAX_DAYS = 366
"""Longest window one request may cover (a year's roll-up)."""
REPEAT_LOOKBACK = timedelta(days=90)
"""A caller seen in the 90 days before the window counts as a repeat caller."""

_TALLIED = frozenset({ReportKind.SERVICE_LEVEL, ReportKind.SEAT_TIME, ReportKind.OPERATIONS})
"""Reports summed from 15-minute tallies; the other two list or classify single calls."""

SCALAR_FIELDS = tuple(f.name for f in fields(KpiSettings) if f.name not in ("timezone", "targets"))


class ReportRequestError(CcbridgeError):
    """A report request the service cannot run; ``field`` names the wrong parameter (422)."""

    code = ErrorCode.VALIDATION
    status = 422
    title = "Invalid request"

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail, field=field)


@dataclass(frozen=True, slots=True)
class Window:
    """A report window: tenant-local dates ``first``..``last`` (inclusive) as UTC instants."""

    first: date
    last: date
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class ReportRun:
    """A computed report with what it was computed under."""

    table: Table
    settings: KpiSettings
    window: Window
    gran: Granularity


@dataclass(frozen=True, slots=True)
class Explanation:
    """What lies behind one number: the call ids per input, or the seat-state pieces."""

    kpi: str
    value: float | None
    inputs: dict[str, float]
    call_ids: dict[str, list[str]]
    pieces: list[SpanPiece]


@dataclass(frozen=True, slots=True)
class DayCalls:
    """The tenant-local day so far: the settings and window it was read under, and its calls
    exactly as the reports count them (queue entry, or start, inside the window)."""

    settings: KpiSettings
    window: Window
    calls: list[CallRecord]


@dataclass(frozen=True, slots=True)
class TenantReportSettings:
    """A tenant's thresholds and templates as the API shows them."""

    kpis: KpiSettings
    templates: dict[ReportKind, ReportTemplate]
    updated_at: datetime | None
    updated_by: str | None


def window(first: date, last: date, zone_name: str) -> Window:
    """The UTC bounds of local midnight ``first`` to local midnight after ``last``."""
    if last < first:
        raise ReportRequestError("to", "'to' is before 'from'")
    if (last - first).days >= MAX_DAYS:
        raise ReportRequestError("to", f"a report covers at most {MAX_DAYS} days")
    zone = tenant_zone(zone_name)
    start = datetime.combine(first, time(), zone)
    end = datetime.combine(last + timedelta(days=1), time(), zone)
    return Window(first, last, start, end)


def _template(data: Mapping[str, Any]) -> ReportTemplate:
    return ReportTemplate(
        columns=tuple(data.get("columns", ())),
        headings=dict(data.get("headings", {})),
        language=str(data.get("language", "zh")),
    )


def _counted_in(calls: list[CallRecord], w: Window) -> list[CallRecord]:
    """The calls a window counts: queue entry (inbound) or start (others) inside it."""
    return [c for c in calls if w.start <= (c.queued_at or c.started_at) < w.end]


def _clip(spans: list[StateSpan], w: Window) -> list[StateSpan]:
    out = []
    for s in spans:
        end = w.end if s.ended_at is None else min(s.ended_at, w.end)
        out.append(StateSpan(s.agent_no, s.state, s.reason, max(s.started_at, w.start), end))
    return out


class ReportService:
    """Compute, explain and export the four reports of a tenant (caller already authorised)."""

    def __init__(
        self,
        source: ReportSource,
        store: ReportSettingsStore,
        zones: TenantZones,
        audit: AuditRecorder,
        now: Callable[[], datetime],
        tally_store: ReportTallyStore | None = None,
        tally_write_margin: timedelta = WRITE_MARGIN,
    ) -> None:
        """Without *tally_store* every report is computed from the raw rows."""
        self._source = source
        self._store = store
        self._zones = zones
        self._audit = audit
        self._now = now
        self.tallies = ReportTallies(
            source, tally_store, self._kpi_settings, now, write_margin=tally_write_margin
        )

    async def _kpi_settings(self, tenant_id: str) -> KpiSettings:
        return (await self.settings(tenant_id)).kpis

    async def settings(self, tenant_id: str) -> TenantReportSettings:
        """The tenant's thresholds (defaults where unset), zone and templates."""
        zone = await self._zones.zone_of(tenant_id)
        stored = await self._store.get(tenant_id)
        thresholds = dict(stored.thresholds) if stored else {}
        targets = tuple(sorted((k, float(v)) for k, v in thresholds.get("targets", {}).items()))
        kpis = KpiSettings(
            timezone=zone,
            targets=targets,
            **{k: v for k, v in thresholds.items() if k in SCALAR_FIELDS},
        )
        templates = {
            ReportKind(k): _template(v) for k, v in (stored.templates if stored else {}).items()
        }
        return TenantReportSettings(
            kpis,
            templates,
            stored.updated_at if stored else None,
            stored.updated_by if stored else None,
        )

    async def put_settings(
        self,
        who: Principal,
        tenant_id: str,
        kpis: KpiSettings,
        templates: Mapping[ReportKind, ReportTemplate],
    ) -> TenantReportSettings:
        """Replace the tenant's thresholds and templates (audited)."""
        await self._zones.zone_of(tenant_id)
        for key, _ in kpis.targets:
            k = BY_KEY.get(key)
            if k is None or k.better is None:
                raise ReportRequestError(
                    f"targets.{key}", f"{key!r} is not a KPI with a direction to judge a target"
                )
        thresholds: dict[str, Any] = {k: v for k, v in asdict(kpis).items() if k in SCALAR_FIELDS}
        thresholds["targets"] = dict(kpis.targets)
        stored_templates = {
            k.value: {
                "columns": list(t.columns),
                "headings": dict(t.headings),
                "language": t.language,
            }
            for k, t in templates.items()
        }
        await self._store.put(
            StoredReportSettings(tenant_id, thresholds, stored_templates, self._now(), who.actor)
        )
        await self._audit.record(
            who,
            tenant_id,
            "reports.settings",
            "report_settings",
            tenant_id,
            {"thresholds": thresholds, "templates": sorted(stored_templates)},
        )
        return await self.settings(tenant_id)

    async def _calls(self, tenant_id: str, w: Window) -> list[CallRecord]:
        """Calls counted in the window (queue entry, or start, inside it)."""
        return _counted_in(await self._source.calls(tenant_id, w.start - CALL_REACH, w.end), w)

    async def _tables(
        self,
        tenant_id: str,
        kinds: tuple[ReportKind, ...],
        cfg: KpiSettings,
        w: Window,
        gran: Granularity,
        dimension: Dimension,
        agent_no: str | None = None,
    ) -> dict[ReportKind, Table]:
        """Compute *kinds* over one window: the tallied reports from 15-minute buckets, the
        per-call ones from the calls' report lines (each stored where valid, else derived from
        the raw rows)."""
        zone = tenant_zone(cfg.timezone)
        until = min(w.end, self._now())
        out: dict[ReportKind, Table] = {}
        if set(kinds) & _TALLIED:
            by_agent = ReportKind.SERVICE_LEVEL in kinds and dimension is Dimension.AGENT
            by_call, by_seat = await self.tallies.buckets(
                tenant_id,
                cfg,
                w.start,
                w.end,
                until,
                by_agent,
                want_calls=bool({ReportKind.SERVICE_LEVEL, ReportKind.OPERATIONS} & set(kinds)),
                want_seats=bool({ReportKind.SEAT_TIME, ReportKind.OPERATIONS} & set(kinds)),
            )
            if ReportKind.SERVICE_LEVEL in kinds:
                rows = roll_calls(by_call, gran, zone, dimension)
                out[ReportKind.SERVICE_LEVEL] = service_level_table(rows, gran, dimension)
            if ReportKind.SEAT_TIME in kinds:
                seat_rows = roll_seats(
                    {k: t for k, t in by_seat.items() if agent_no in (None, k[1])}, gran, zone
                )
                table = seat_time_table(seat_rows, cfg, gran)
                if agent_no is not None:
                    table.rows = [r for r in table.rows if r["agent_no"] in (agent_no, "*")]
                out[ReportKind.SEAT_TIME] = table
            if ReportKind.OPERATIONS in kinds:
                tenant_calls = CallTally()
                for t in by_call.values():
                    tenant_calls.absorb(t)
                days = roll_seats(by_seat, Granularity.DAY, zone)
                out[ReportKind.OPERATIONS] = operations_table(tenant_calls, days, cfg)
        if ReportKind.SEAT_DETAIL in kinds or ReportKind.CALL_ATTRIBUTES in kinds:
            lines = in_report_order(await self.tallies.lines(tenant_id, cfg, w.start, w.end))
            if ReportKind.SEAT_DETAIL in kinds:
                out[ReportKind.SEAT_DETAIL] = seat_detail_table(lines, tenant_id, agent_no)
            if ReportKind.CALL_ATTRIBUTES in kinds:
                known = await self._source.callers_before(
                    tenant_id, w.start - REPEAT_LOOKBACK, w.start
                )
                out[ReportKind.CALL_ATTRIBUTES] = attributes_table(lines, known)
        return out

    async def run(
        self,
        tenant_id: str,
        kind: ReportKind,
        first: date,
        last: date,
        gran: Granularity = Granularity.DAY,
        dimension: Dimension = Dimension.TENANT,
        agent_no: str | None = None,
    ) -> ReportRun:
        """Compute one report for the tenant-local dates ``first``..``last``."""
        cfg = (await self.settings(tenant_id)).kpis
        w = window(first, last, cfg.timezone or "")
        tables = await self._tables(tenant_id, (kind,), cfg, w, gran, dimension, agent_no)
        return ReportRun(tables[kind], cfg, w, gran)

    async def today_calls(self, tenant_id: str) -> DayCalls:
        """The calls of the tenant-local day so far, read as every report reads its window."""
        cfg = (await self.settings(tenant_id)).kpis
        day = self._now().astimezone(tenant_zone(cfg.timezone)).date()
        w = window(day, day, cfg.timezone or "")
        return DayCalls(cfg, w, await self._calls(tenant_id, w))

    async def run_all(
        self,
        tenant_id: str,
        first: date,
        last: date,
        gran: Granularity = Granularity.DAY,
        dimension: Dimension = Dimension.SKILL_GROUP,
    ) -> dict[ReportKind, ReportRun]:
        """All four reports of one window (the period pack RPT-02 asks for)."""
        cfg = (await self.settings(tenant_id)).kpis
        w = window(first, last, cfg.timezone or "")
        kinds = (
            ReportKind.SERVICE_LEVEL,
            ReportKind.SEAT_TIME,
            ReportKind.SEAT_DETAIL,
            ReportKind.CALL_ATTRIBUTES,
        )
        tables = await self._tables(tenant_id, kinds, cfg, w, gran, dimension)
        return {kind: ReportRun(tables[kind], cfg, w, gran) for kind in kinds}

    async def explain(
        self,
        tenant_id: str,
        kind: ReportKind,
        first: date,
        last: date,
        gran: Granularity,
        at: datetime,
        group: str,
        kpi_key: str,
        dimension: Dimension = Dimension.TENANT,
    ) -> Explanation:
        """The calls (service level) or the seat-state pieces and calls (seat time) behind the
        KPI *kpi_key* of the row at *at* (any instant inside the interval) and *group*."""
        k = BY_KEY.get(kpi_key)
        if k is None:
            raise ReportRequestError("kpi", f"unknown KPI {kpi_key!r}")
        cfg = (await self.settings(tenant_id)).kpis
        w = window(first, last, cfg.timezone or "")
        zone = tenant_zone(cfg.timezone)
        work = await self._source.calls(tenant_id, w.start - CALL_REACH, w.end)
        calls = [c for c in work if w.start <= (c.queued_at or c.started_at) < w.end]
        ends = [c.ended_at for c in calls if c.ended_at is not None]
        spans = await self._source.spans(
            tenant_id,
            min([w.start, *ends]) - WRAP_TOLERANCE,
            max([w.end, *ends]) + WRAP_TOLERANCE,
        )
        start = interval_start(at, gran, zone)
        if kind is ReportKind.SERVICE_LEVEL and k.basis is Basis.CALLS:
            rows = tally_calls(calls, spans, cfg, gran, dimension, only=(start, group))
            tally = rows.get((start, group))
            inputs = tally.inputs() if tally else {}
            ids = dict(tally.contributors or {}) if tally else {}
            return Explanation(
                kpi_key,
                k.value(inputs) if tally else None,
                {i: inputs.get(i, 0.0) for i in k.inputs},
                {i: list(ids.get(i, [])) for i in k.inputs},
                [],
            )
        if kind is ReportKind.SEAT_TIME and k.basis is Basis.SEAT:
            until = min(w.end, self._now())
            mine = [s for s in spans if s.agent_no == group]
            pieces = span_pieces(_clip(mine, w), cfg, gran, until, (start, group))
            handled = [
                c.call_id
                for c in work
                for s in c.segments
                if s.agent_no == group
                and w.start <= s.started_at < until
                and s.started_at - c.started_at <= CALL_REACH
                and interval_start(s.started_at, gran, zone) == start
            ]
            seat = tally_seats(work, mine, cfg, gran, until, since=w.start).get((start, group))
            return Explanation(
                kpi_key,
                k.value(seat.inputs()) if seat else None,
                {},
                {"handled": handled},
                pieces,
            )
        raise ReportRequestError(
            "kpi", f"KPI {kpi_key!r} cannot be explained on the {kind.value} report"
        )

    async def export(
        self, run: ReportRun, tenant_id: str, fmt: str, use_template: bool = True
    ) -> bytes:
        """Lay the report out under the tenant's template and encode it as CSV or XLSX."""
        sheet = await self.sheet(run, tenant_id, use_template)
        return to_xlsx(sheet) if fmt == "xlsx" else to_csv(sheet)

    async def sheet(self, run: ReportRun, tenant_id: str, use_template: bool = True) -> Sheet:
        """The report as headings and rows under the tenant's template (or the defaults)."""
        template = ReportTemplate()
        if use_template:
            template = (await self.settings(tenant_id)).templates.get(run.table.kind, template)
        try:
            return layout(run.table, template, REPORT_TITLES[run.table.kind])
        except TemplateError as exc:
            raise ReportRequestError("template.columns", str(exc)) from exc
