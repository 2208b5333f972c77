"""The four contract reports (RPT-01) per tenant: JSON, CSV (with BOM) or XLSX, and explain."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field

from ccbridge.api.security import require
from ccbridge.domain.access import Principal
from ccbridge.domain.kpis.settings import KpiSettings
from ccbridge.domain.reports.intervals import Granularity
from ccbridge.domain.reports.model import REPORT_TITLES, Dimension, ReportKind
from ccbridge.domain.reports.template import ReportTemplate
from ccbridge.report_format import CSV_MEDIA_TYPE, XLSX_MEDIA_TYPE
from ccbridge.services.reports import ReportService, TenantReportSettings

router = APIRouter(prefix="/api/v1/tenants/{tenant_id}/reports", tags=["reports"])

TenantPath = Annotated[str, Path(max_length=64)]
Reader = Annotated[Principal, Depends(require("reports:read"))]
_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such tenant (or another tenant's)"},
    422: {"description": "A parameter is wrong; `errors[].field` says which"},
}


class ExportFormat(StrEnum):
    """How the report is returned."""

    JSON = "json"
    CSV = "csv"
    XLSX = "xlsx"


class TemplateIn(BaseModel):
    """A report in the client's own format: which columns, in which order, under which
    headings (column keys as in the JSON report's ``columns``)."""

    columns: Annotated[list[Annotated[str, Field(max_length=64)]], Field(max_length=100)] = []
    headings: dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=100)]] = (
        Field(default_factory=dict, max_length=100)
    )
    language: Annotated[str, Field(pattern="^(zh|en)$")] = "zh"


class ReportSettingsIn(BaseModel):
    """A tenant's KPI thresholds, targets and templates."""

    service_level_seconds: Annotated[int, Field(ge=1, le=600)] = 30
    short_abandon_seconds: Annotated[int, Field(ge=0, le=120)] = 5
    billable_seconds: Annotated[int, Field(ge=0, le=600)] = 15
    outbound_daily_quota: Annotated[int | None, Field(ge=0, le=100_000)] = None
    required_headcount: Annotated[int | None, Field(ge=0, le=100_000)] = None
    targets: dict[Annotated[str, Field(max_length=64)], float] = Field(
        default_factory=dict,
        max_length=50,
        description="Targets by KPI key for the operations report, e.g. answer_rate: 90 "
        "(KPIs with a direction in docs/kpis.md)",
    )
    templates: dict[ReportKind, TemplateIn] = Field(default_factory=dict)


class ReportSettingsOut(ReportSettingsIn):
    """The settings in force (defaults where never set) and the tenant's time zone."""

    timezone: str
    updated_at: datetime | None = None
    updated_by: str | None = None


class ColumnOut(BaseModel):
    """A report column: its key and heading."""

    key: str
    heading: str


class ReportOut(BaseModel):
    """A computed report."""

    report: ReportKind
    title: str
    tenant_id: str
    from_date: date = Field(alias="from")
    to_date: date = Field(alias="to")
    interval: Granularity
    timezone: str
    columns: list[ColumnOut]
    rows: list[dict[str, str | int | float | None]]


class PieceOut(BaseModel):
    """The part of one agent-state interval inside the explained row."""

    agent_no: str
    state: str
    reason: str
    started_at: datetime
    ended_at: datetime
    seconds: float


class ExplanationOut(BaseModel):
    """What lies behind one number of a report."""

    kpi: str
    value: float | None
    inputs: dict[str, float]
    call_ids: dict[str, list[str]]
    intervals: list[PieceOut]


def _svc(request: Request) -> ReportService:
    service: ReportService = request.app.state.reports
    return service


def _settings_out(s: TenantReportSettings) -> ReportSettingsOut:
    k = s.kpis
    return ReportSettingsOut(
        service_level_seconds=k.service_level_seconds,
        short_abandon_seconds=k.short_abandon_seconds,
        billable_seconds=k.billable_seconds,
        outbound_daily_quota=k.outbound_daily_quota,
        required_headcount=k.required_headcount,
        targets=dict(k.targets),
        templates={
            kind: TemplateIn(
                columns=list(t.columns), headings=dict(t.headings), language=t.language
            )
            for kind, t in s.templates.items()
        },
        timezone=k.timezone or "Asia/Shanghai",
        updated_at=s.updated_at,
        updated_by=s.updated_by,
    )


@router.get("/settings", response_model=ReportSettingsOut, responses=_RESPONSES)
async def get_report_settings(
    request: Request, tenant_id: TenantPath, _who: Reader
) -> ReportSettingsOut:
    """The tenant's KPI thresholds (T, short abandon, billable), targets and templates."""
    return _settings_out(await _svc(request).settings(tenant_id))


@router.put("/settings", response_model=ReportSettingsOut, responses=_RESPONSES)
async def put_report_settings(
    request: Request,
    tenant_id: TenantPath,
    body: ReportSettingsIn,
    who: Annotated[Principal, Depends(require("reports:write"))],
) -> ReportSettingsOut:
    """Replace the tenant's thresholds, targets and templates (audited)."""
    kpis = KpiSettings(
        service_level_seconds=body.service_level_seconds,
        short_abandon_seconds=body.short_abandon_seconds,
        billable_seconds=body.billable_seconds,
        outbound_daily_quota=body.outbound_daily_quota,
        required_headcount=body.required_headcount,
        targets=tuple(sorted(body.targets.items())),
    )
    templates = {
        kind: ReportTemplate(tuple(t.columns), dict(t.headings), t.language)
        for kind, t in body.templates.items()
    }
    return _settings_out(await _svc(request).put_settings(who, tenant_id, kpis, templates))


FromQuery = Annotated[date, Query(alias="from", description="First tenant-local date")]
ToQuery = Annotated[date, Query(alias="to", description="Last tenant-local date (inclusive)")]
IntervalQuery = Annotated[Granularity, Query(description="Row width")]
GroupQuery = Annotated[
    Dimension, Query(description="service-level rows per tenant, skill group or agent")
]


@router.get(
    "/{report}",
    response_model=ReportOut,
    responses={
        **_RESPONSES,
        200: {
            "content": {CSV_MEDIA_TYPE: {}, XLSX_MEDIA_TYPE: {}},
            "description": "The report as JSON, CSV (UTF-8 with BOM) or XLSX",
        },
    },
    response_model_by_alias=True,
)
async def get_report(
    request: Request,
    tenant_id: TenantPath,
    report: ReportKind,
    from_date: FromQuery,
    to_date: ToQuery,
    _who: Reader,
    interval: IntervalQuery = Granularity.DAY,
    group_by: GroupQuery = Dimension.TENANT,
    agent_no: Annotated[str | None, Query(max_length=64)] = None,
    format: Annotated[ExportFormat, Query()] = ExportFormat.JSON,
    template: Annotated[bool, Query(description="Apply the tenant's template")] = True,
) -> Any:
    """话务服务水平统计报表, 坐席服务时段分析表, 坐席服务明细表 or 来电属性分析报表 for the dates
    ``from``..``to`` in the tenant's time zone (KPI definitions: docs/kpis.md)."""
    svc = _svc(request)
    run = await svc.run(tenant_id, report, from_date, to_date, interval, group_by, agent_no)
    if format is not ExportFormat.JSON:
        body = await svc.export(run, tenant_id, format.value, template)
        name = f"{tenant_id}-{report.value}-{from_date}-{to_date}.{format.value}"
        return Response(
            body,
            media_type=CSV_MEDIA_TYPE if format is ExportFormat.CSV else XLSX_MEDIA_TYPE,
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    sheet = await svc.sheet(run, tenant_id, template)
    keys = [c.key for c in run.table.columns]
    if template:
        chosen = (await svc.settings(tenant_id)).templates.get(report)
        if chosen is not None and chosen.columns:
            keys = list(chosen.columns)
    return ReportOut.model_validate(
        {
            "report": report,
            "title": REPORT_TITLES[report],
            "tenant_id": tenant_id,
            "from": from_date,
            "to": to_date,
            "interval": interval,
            "timezone": run.settings.timezone or "Asia/Shanghai",
            "columns": [
                {"key": k, "heading": h} for k, h in zip(keys, sheet.headings, strict=True)
            ],
            "rows": [dict(zip(keys, row, strict=True)) for row in sheet.rows],
        }
    ).model_dump(by_alias=True)


@router.get("/{report}/explain", response_model=ExplanationOut, responses=_RESPONSES)
async def explain_report(
    request: Request,
    tenant_id: TenantPath,
    report: ReportKind,
    from_date: FromQuery,
    to_date: ToQuery,
    at: Annotated[datetime, Query(description="Any instant inside the row's interval")],
    kpi: Annotated[str, Query(max_length=64, description="A KPI key from docs/kpis.md")],
    _who: Reader,
    group: Annotated[
        str,
        Query(
            max_length=64,
            description="The row's group: skill group or 工号; empty for the whole tenant",
        ),
    ] = "",
    interval: IntervalQuery = Granularity.DAY,
    group_by: GroupQuery = Dimension.TENANT,
) -> ExplanationOut:
    """The call ids (service level) or the agent-state intervals and calls (seat time) behind
    one number."""
    e = await _svc(request).explain(
        tenant_id, report, from_date, to_date, interval, at, group, kpi, group_by
    )
    return ExplanationOut(
        kpi=e.kpi,
        value=e.value,
        inputs=e.inputs,
        call_ids=e.call_ids,
        intervals=[
            PieceOut(
                agent_no=p.agent_no,
                state=p.state.value,
                reason=p.reason,
                started_at=p.started_at,
                ended_at=p.ended_at,
                seconds=p.seconds,
            )
            for p in e.pieces
        ],
    )
