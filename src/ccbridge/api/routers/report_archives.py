"""Archived scheduled reports per tenant: listed with state, progress and SHA-256, downloaded
as the generated file (RPT-02/03)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel

from ccbridge.api.security import require
from ccbridge.domain.access import Principal
from ccbridge.domain.reports.model import REPORT_TITLES, ReportKind
from ccbridge.domain.reports.schedule import Period
from ccbridge.report_format import XLSX_MEDIA_TYPE
from ccbridge.services.report_archives import ReportArchiver
from ccbridge.services.report_ports import ReportArchive

router = APIRouter(prefix="/api/v1/tenants/{tenant_id}/report-archives", tags=["reports"])

TenantPath = Annotated[str, Path(max_length=64)]
ArchivePath = Annotated[str, Path(max_length=36)]
Reader = Annotated[Principal, Depends(require("reports:read"))]
_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such tenant or archive (or another tenant's)"},
    422: {"description": "A parameter is wrong; `errors[].field` says which"},
}


class ReportArchiveOut(BaseModel):
    """One scheduled report of a completed period and how its generation stands."""

    id: str
    report: ReportKind
    title: str
    period: Period
    first_day: date
    last_day: date
    format: str
    state: str
    """``running``, ``done`` or ``failed`` (retried by the next pass)."""
    progress: int
    """0-100; 100 once done."""
    rows: int | None
    size: int | None
    sha256: str | None
    """Hex SHA-256 of the file (also sent as ``X-Checksum-SHA256`` on download)."""
    error: str | None
    created_at: datetime
    updated_at: datetime


def _svc(request: Request) -> ReportArchiver:
    service: ReportArchiver = request.app.state.report_archives
    return service


def _out(a: ReportArchive) -> ReportArchiveOut:
    return ReportArchiveOut(
        id=a.id,
        report=a.report,
        title=REPORT_TITLES[a.report],
        period=a.period,
        first_day=a.first_day,
        last_day=a.last_day,
        format=a.format,
        state=a.state.value,
        progress=a.progress,
        rows=a.rows,
        size=a.size,
        sha256=a.sha256,
        error=a.error,
        created_at=a.created_at,
        updated_at=a.updated_at,
    )


@router.get("", response_model=list[ReportArchiveOut], responses=_RESPONSES)
async def list_report_archives(
    request: Request,
    tenant_id: TenantPath,
    _who: Reader,
    report: Annotated[ReportKind | None, Query()] = None,
    period: Annotated[Period | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[ReportArchiveOut]:
    """The tenant's archived reports, newest period first."""
    return [_out(a) for a in await _svc(request).list(tenant_id, report, period, limit)]


@router.get("/{archive_id}", response_model=ReportArchiveOut, responses=_RESPONSES)
async def get_report_archive(
    request: Request, tenant_id: TenantPath, archive_id: ArchivePath, _who: Reader
) -> ReportArchiveOut:
    """One archive's state, progress and checksum."""
    return _out(await _svc(request).get(tenant_id, archive_id))


@router.get(
    "/{archive_id}/file",
    response_class=Response,
    responses={
        **_RESPONSES,
        200: {"content": {XLSX_MEDIA_TYPE: {}}, "description": "The archived XLSX file"},
    },
)
async def download_report_archive(
    request: Request, tenant_id: TenantPath, archive_id: ArchivePath, _who: Reader
) -> Response:
    """The archived file, byte for byte as generated; ``X-Checksum-SHA256`` carries its hex
    SHA-256 (404 while it is still running or failed)."""
    archive, body = await _svc(request).download(tenant_id, archive_id)
    name = f"{tenant_id}-{archive.report.value}-{archive.period.value}-{archive.first_day}.xlsx"
    return Response(
        body,
        media_type=XLSX_MEDIA_TYPE,
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "X-Checksum-SHA256": archive.sha256 or "",
        },
    )
