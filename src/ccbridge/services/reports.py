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
from ccbridge.domain.reports.call_attributes import call_attributes_report
from ccbridge.domain.reports.intervals import Granularity, interval_start
from ccbridge.domain.reports.model import REPORT_TITLES, Dimension, ReportKind, StateSpan, Table
from ccbridge.domain.reports.operations import operations_report
from ccbridge.domain.reports.seat_detail import seat_detail_report
from ccbridge.domain.reports.seat_time import SpanPiece, seat_time_report, span_pieces
from ccbridge.domain.reports.service_level import service_level_report, tally_calls
from ccbridge.domain.reports.template import ReportTemplate, Sheet, TemplateError, layout
from ccbridge.errors import CcbridgeError, ErrorCode
from ccbridge.report_format import to_csv, to_xlsx
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.calendar import TenantZones
from ccbridge.services.report_ports import ReportSettingsStore, ReportSource, StoredReportSettings

MAX_DAYS = 366
"""Longest window one request may cover (a year's roll-up)."""
REPEAT_LOOKBACK = timedelta(days=90)
"""A caller seen in the 90 days before the window counts as a repeat caller."""
QUEUE_LOOKBACK = timedelta(hours=1)
"""A call counts at its queue entry, which may come this long after its start."""

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
    ) -> None:
        self._source = source
        self._store = store
        self._zones = zones
        self._audit = audit
        self._now = now

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

    async def _inputs(self, tenant_id: str, w: Window) -> tuple[list[CallRecord], list[StateSpan]]:
        calls = await self._source.calls(tenant_id, w.start - QUEUE_LOOKBACK, w.end)
        kept = _counted_in(calls, w)
        spans = _clip(await self._source.spans(tenant_id, w.start, w.end), w)
        return kept, spans

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
        calls, spans = await self._inputs(tenant_id, w)
        until = min(w.end, self._now())
        if kind is ReportKind.SERVICE_LEVEL:
            table = service_level_report(calls, spans, cfg, gran, dimension)
        elif kind is ReportKind.SEAT_TIME:
            if agent_no is not None:
                spans = [s for s in spans if s.agent_no == agent_no]
            table = seat_time_report(calls, spans, cfg, gran, until)
            if agent_no is not None:
                table.rows = [r for r in table.rows if r["agent_no"] in (agent_no, "*")]
        elif kind is ReportKind.SEAT_DETAIL:
            table = seat_detail_report(calls, cfg, tenant_id, agent_no)
        elif kind is ReportKind.OPERATIONS:
            table = operations_report(calls, spans, cfg, until)
        else:
            known = await self._source.callers_before(tenant_id, w.start - REPEAT_LOOKBACK, w.start)
            table = call_attributes_report(calls, cfg, known)
        return ReportRun(table, cfg, w, gran)

    async def today_calls(self, tenant_id: str) -> DayCalls:
        """The calls of the tenant-local day so far, read as every report reads its window."""
        cfg = (await self.settings(tenant_id)).kpis
        day = self._now().astimezone(tenant_zone(cfg.timezone)).date()
        w = window(day, day, cfg.timezone or "")
        calls = await self._source.calls(tenant_id, w.start - QUEUE_LOOKBACK, w.end)
        return DayCalls(cfg, w, _counted_in(calls, w))

    async def run_all(
        self,
        tenant_id: str,
        first: date,
        last: date,
        gran: Granularity = Granularity.DAY,
        dimension: Dimension = Dimension.SKILL_GROUP,
    ) -> dict[ReportKind, ReportRun]:
        """All four reports of one window from one read of its calls and state intervals
        (the period pack RPT-02 asks for)."""
        cfg = (await self.settings(tenant_id)).kpis
        w = window(first, last, cfg.timezone or "")
        calls, spans = await self._inputs(tenant_id, w)
        known = await self._source.callers_before(tenant_id, w.start - REPEAT_LOOKBACK, w.start)
        until = min(w.end, self._now())
        tables = {
            ReportKind.SERVICE_LEVEL: service_level_report(calls, spans, cfg, gran, dimension),
            ReportKind.SEAT_TIME: seat_time_report(calls, spans, cfg, gran, until),
            ReportKind.SEAT_DETAIL: seat_detail_report(calls, cfg, tenant_id),
            ReportKind.CALL_ATTRIBUTES: call_attributes_report(calls, cfg, known),
        }
        return {kind: ReportRun(table, cfg, w, gran) for kind, table in tables.items()}

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
        calls, spans = await self._inputs(tenant_id, w)
        start = interval_start(at, gran, tenant_zone(cfg.timezone))
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
            pieces = span_pieces(spans, cfg, gran, until, (start, group))
            handled = [
                c.call_id
                for c in calls
                for s in c.segments
                if s.agent_no == group
                and interval_start(s.started_at, gran, tenant_zone(cfg.timezone)) == start
            ]
            table = seat_time_report(
                calls, [s for s in spans if s.agent_no == group], cfg, gran, until
            )
            row = next(
                (
                    r
                    for r in table.rows
                    if r["agent_no"] == group
                    and r["interval_start"] == start.isoformat(timespec="seconds")
                ),
                {},
            )
            value = row.get(kpi_key)
            return Explanation(
                kpi_key,
                float(value) if isinstance(value, int | float) else None,
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
