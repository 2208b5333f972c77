"""The stability SLA (BILL-07/08/09): the incident log and each tenant's monthly figure."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, Field

from ccbridge.api.security import require
from ccbridge.domain.access import Principal
from ccbridge.domain.sla.incidents import ExclusionReason, Incident
from ccbridge.services.sla import SlaService

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
