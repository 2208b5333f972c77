"""The stability SLA (BILL-07/08/09): the incident log and each tenant's monthly figure."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field

from ccbridge.api.security import require
from ccbridge.domain.access import AccessDeniedError, Principal
from ccbridge.domain.sla.incidents import ExclusionReason, Incident
from ccbridge.services.sla import FaultReport, SlaService

router = APIRouter(tags=["sla"])

Admin = Annotated[Principal, Depends(require("reports:write"))]
IncidentId = Annotated[str, Path(max_length=36)]
_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "Only the platform admin keeps the incident log"},
    404: {"description": "No such incident"},
}


class IncidentIn(BaseModel):
    """An outage: when, why, whom it hit (``tenants`` null: every tenant)."""

    started_at: datetime
    ended_at: datetime | None = None
    cause: Annotated[str, Field(min_length=1, max_length=2000)]
    tenants: Annotated[
        list[Annotated[str, Field(max_length=64)]] | None, Field(max_length=1000)
    ] = None


class IncidentPatch(BaseModel):
    """Close an incident or correct its cause."""

    ended_at: datetime | None = None
    cause: Annotated[str | None, Field(min_length=1, max_length=2000)] = None


class ExclusionIn(BaseModel):
    """Why an incident does not count (the contract's non-business faults, BILL-08)."""

    reason: ExclusionReason
    note: Annotated[str, Field(max_length=2000)] = ""


class ExclusionOut(ExclusionIn):
    """Who excluded it, and when."""

    by: str
    at: datetime


class IncidentOut(BaseModel):
    """A logged incident."""

    id: str
    started_at: datetime
    ended_at: datetime | None
    cause: str
    source: str
    tenants: list[str] | None
    excluded: bool
    exclusion: ExclusionOut | None

    @classmethod
    def of(cls, i: Incident) -> IncidentOut:
        """Render a domain incident."""
        e = i.exclusion
        return cls(
            id=i.id,
            started_at=i.started_at,
            ended_at=i.ended_at,
            cause=i.cause,
            source=i.source.value,
            tenants=None if i.tenants is None else sorted(i.tenants),
            excluded=i.excluded,
            exclusion=None
            if e is None
            else ExclusionOut(reason=e.reason, note=e.note, by=e.by, at=e.at),
        )


class MonthlySlaOut(BaseModel):
    """F1 and F2 for one tenant-local month."""

    tenant_id: str
    year: int
    month: int
    days: int
    fault_minutes: float
    stability_percent: Decimal
    tier: str
    pay_fraction: Decimal
    report_required: bool = Field(description="Stability ≤ 90 %: a written report is owed")
    bill: Decimal | None
    payable: Decimal | None
    deduction: Decimal | None
    incidents: list[IncidentOut]


def _svc(request: Request) -> SlaService:
    service: SlaService = request.app.state.sla
    return service


@router.post(
    "/api/v1/sla/incidents", status_code=201, response_model=IncidentOut, responses=_RESPONSES
)
async def create_incident(request: Request, body: IncidentIn, who: Admin) -> IncidentOut:
    """Log an incident (platform admin)."""
    i = await _svc(request).record(who, body.started_at, body.ended_at, body.cause, body.tenants)
    return IncidentOut.of(i)


@router.get("/api/v1/sla/incidents", response_model=list[IncidentOut], responses=_RESPONSES)
async def list_incidents(
    request: Request,
    who: Admin,
    start: Annotated[datetime, Query(alias="from")],
    end: Annotated[datetime, Query(alias="to")],
) -> list[IncidentOut]:
    """Incidents overlapping ``[from, to)``."""
    return [IncidentOut.of(i) for i in await _svc(request).list(who, start, end)]


@router.get("/api/v1/sla/incidents/{incident_id}", response_model=IncidentOut, responses=_RESPONSES)
async def get_incident(request: Request, incident_id: IncidentId, who: Admin) -> IncidentOut:
    """One incident."""
    return IncidentOut.of(await _svc(request).get(who, incident_id))


@router.patch(
    "/api/v1/sla/incidents/{incident_id}", response_model=IncidentOut, responses=_RESPONSES
)
async def patch_incident(
    request: Request, incident_id: IncidentId, body: IncidentPatch, who: Admin
) -> IncidentOut:
    """Close the incident (``ended_at``) or correct its cause."""
    i = await _svc(request).update(who, incident_id, ended_at=body.ended_at, cause=body.cause)
    return IncidentOut.of(i)


@router.put(
    "/api/v1/sla/incidents/{incident_id}/exclusion",
    response_model=IncidentOut,
    responses=_RESPONSES,
)
async def exclude_incident(
    request: Request, incident_id: IncidentId, body: ExclusionIn, who: Admin
) -> IncidentOut:
    """Exclude the incident from stability, recording who and why (audited)."""
    return IncidentOut.of(await _svc(request).exclude(who, incident_id, body.reason, body.note))


@router.delete(
    "/api/v1/sla/incidents/{incident_id}/exclusion",
    response_model=IncidentOut,
    responses=_RESPONSES,
)
async def include_incident(request: Request, incident_id: IncidentId, who: Admin) -> IncidentOut:
    """Count the incident again."""
    return IncidentOut.of(await _svc(request).exclude(who, incident_id, None))


@router.delete("/api/v1/sla/incidents/{incident_id}", status_code=204, responses=_RESPONSES)
async def delete_incident(request: Request, incident_id: IncidentId, who: Admin) -> Response:
    """Remove an incident logged in error (audited)."""
    await _svc(request).delete(who, incident_id)
    return Response(status_code=204)


@router.get(
    "/api/v1/tenants/{tenant_id}/sla/{year}/{month}",
    response_model=MonthlySlaOut,
    responses={404: {"description": "No such tenant (or another tenant's)"}},
)
async def monthly_sla(
    request: Request,
    tenant_id: Annotated[str, Path(max_length=64)],
    year: Annotated[int, Path(ge=2000, le=2100)],
    month: Annotated[int, Path(ge=1, le=12)],
    _who: Annotated[Principal, Depends(require("reports:read"))],
    bill: Annotated[
        Decimal | None,
        Query(
            ge=0, le=10**12, description="The month's bill before VAT: F2's payable and deduction"
        ),
    ] = None,
) -> MonthlySlaOut:
    """System stability (F1) of the tenant-local month, its penalty tier, and F2 on ``bill``."""
    m = await _svc(request).monthly(tenant_id, year, month, bill)
    return MonthlySlaOut(
        tenant_id=m.tenant_id,
        year=m.year,
        month=m.month,
        days=m.days,
        fault_minutes=m.fault_minutes,
        stability_percent=m.stability_percent,
        tier=m.tier.value,
        pay_fraction=m.pay_fraction,
        report_required=m.report_required,
        bill=m.bill,
        payable=m.payable,
        deduction=m.deduction,
        incidents=[IncidentOut.of(i) for i in m.incidents],
    )


class FaultReportIn(BaseModel):
    """A fault the tenant noticed (the 5×8 fault hotline, 000:188)."""

    summary: Annotated[str, Field(min_length=1, max_length=2000)]
    noticed_at: datetime | None = Field(None, description="When it began; default now")


class FaultReportOut(FaultReportIn):
    """A filed fault report and the provider's decision."""

    id: str
    tenant_id: str
    reported_at: datetime
    reported_by: str
    status: str
    incident_id: str | None
    decided_by: str | None
    note: str

    @classmethod
    def of(cls, r: FaultReport) -> FaultReportOut:
        """Render a domain report."""
        return cls(
            id=r.id,
            tenant_id=r.tenant_id,
            reported_at=r.reported_at,
            reported_by=r.reported_by,
            noticed_at=r.noticed_at,
            summary=r.summary,
            status=r.status.value,
            incident_id=r.incident_id,
            decided_by=r.decided_by,
            note=r.note,
        )


class PromoteIn(BaseModel):
    """The incident a confirmed fault report becomes (defaults: the report's time and text)."""

    started_at: datetime | None = None
    ended_at: datetime | None = None
    cause: Annotated[str | None, Field(min_length=1, max_length=2000)] = None


class RejectIn(BaseModel):
    """Why a fault report is not an incident."""

    note: Annotated[str, Field(min_length=1, max_length=2000)]


class PromotedOut(BaseModel):
    """The promoted report and its incident."""

    report: FaultReportOut
    incident: IncidentOut


TenantPath = Annotated[str, Path(max_length=64)]
ReportId = Annotated[str, Path(max_length=36)]


@router.post(
    "/api/v1/tenants/{tenant_id}/sla/fault-reports",
    status_code=201,
    response_model=FaultReportOut,
    responses={404: {"description": "No such tenant (or another tenant's)"}},
)
async def report_fault(
    request: Request,
    tenant_id: TenantPath,
    body: FaultReportIn,
    who: Annotated[Principal, Depends(require("reports:read"))],
) -> FaultReportOut:
    """File a fault report; it counts against stability once the provider promotes it."""
    r = await _svc(request).report_fault(who, tenant_id, body.summary, body.noticed_at)
    return FaultReportOut.of(r)


@router.get(
    "/api/v1/tenants/{tenant_id}/sla/fault-reports",
    response_model=list[FaultReportOut],
    responses={404: {"description": "No such tenant (or another tenant's)"}},
)
async def tenant_faults(
    request: Request,
    tenant_id: TenantPath,
    _who: Annotated[Principal, Depends(require("reports:read"))],
) -> list[FaultReportOut]:
    """The tenant's fault reports, newest first."""
    return [FaultReportOut.of(r) for r in await _svc(request).faults(tenant_id)]


@router.get("/api/v1/sla/fault-reports", response_model=list[FaultReportOut], responses=_RESPONSES)
async def all_faults(request: Request, who: Admin) -> list[FaultReportOut]:
    """Every tenant's fault reports, newest first (platform admin's queue)."""
    if not who.is_platform:
        raise AccessDeniedError("only the platform admin sees every tenant's fault reports")
    return [FaultReportOut.of(r) for r in await _svc(request).faults(None)]


@router.post(
    "/api/v1/sla/fault-reports/{report_id}/promote",
    response_model=PromotedOut,
    responses={**_RESPONSES, 409: {"description": "Already promoted or rejected"}},
)
async def promote_fault(
    request: Request, report_id: ReportId, body: PromoteIn, who: Admin
) -> PromotedOut:
    """Confirm the fault: it becomes an incident of that tenant (source ``tenant_report``)."""
    r, i = await _svc(request).promote_fault(
        who, report_id, body.started_at, body.ended_at, body.cause
    )
    return PromotedOut(report=FaultReportOut.of(r), incident=IncidentOut.of(i))


@router.post(
    "/api/v1/sla/fault-reports/{report_id}/reject",
    response_model=FaultReportOut,
    responses={**_RESPONSES, 409: {"description": "Already promoted or rejected"}},
)
async def reject_fault(
    request: Request, report_id: ReportId, body: RejectIn, who: Admin
) -> FaultReportOut:
    """Close the report without an incident, saying why (audited)."""
    return FaultReportOut.of(await _svc(request).reject_fault(who, report_id, body.note))
