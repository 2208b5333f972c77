"""Seat leases, change requests with notice periods, and seat utilisation."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field

from ccbridge.api.schemas.bounds import Int64
from ccbridge.api.schemas.seats import LeaseIn, LeaseOut, UtilisationHourOut, UtilisationOut
from ccbridge.api.security import require
from ccbridge.domain.access import Principal
from ccbridge.domain.leases.model import ChangeKind, SeatKind, SeatLease
from ccbridge.services.leases import LeaseService

router = APIRouter(prefix="/api/v1/tenants/{tenant_id}", tags=["leases"])

TenantPath = Annotated[str, Path(max_length=64)]
_RESPONSES: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such lease (or another tenant's)"},
    409: {"description": "Refused by a contract rule (notice period); `reason` says which"},
}


class LeaseChangeIn(BaseModel):
    """A change request. Seat count or kind: 7 working days' notice; skill groups: 1."""

    kind: ChangeKind
    effective_on: date
    seats: dict[SeatKind, Annotated[int, Field(ge=0, le=100_000)]] | None = None
    override_notice: bool = Field(False, description="Platform admin only: waive the notice period")


class LeaseChangeOut(LeaseChangeIn):
    """A stored change request."""

    id: str
    calendar_loaded: bool = Field(
        description="False when the notice ran into a year with no holiday calendar loaded, so "
        "it was counted Monday to Friday only"
    )


def _svc(request: Request) -> LeaseService:
    service: LeaseService = request.app.state.leases
    return service


def _out(lease_id: str, lease: SeatLease) -> LeaseOut:
    return LeaseOut(
        id=lease_id,
        seats=dict(lease.seats),
        valid_from=lease.valid_from,
        valid_until=lease.valid_until,
        monthly_price=dict(lease.monthly_price),
        seat_usage=lease.seat_usage,
    )


@router.post("/leases", status_code=201, response_model=LeaseOut, responses=_RESPONSES)
async def create_lease(
    request: Request,
    tenant_id: TenantPath,
    body: LeaseIn,
    who: Annotated[Principal, Depends(require("leases:write"))],
) -> LeaseOut:
    """Lease N seats per kind to the tenant for a window (platform admin)."""
    record = await _svc(request).create(who, body.to_lease(tenant_id))
    return _out(record.id, record.lease)


@router.get("/leases", response_model=list[LeaseOut], responses=_RESPONSES)
async def list_leases(
    request: Request,
    tenant_id: TenantPath,
    _who: Annotated[Principal, Depends(require("leases:read"))],
) -> list[LeaseOut]:
    """The tenant's leases by start date."""
    return [_out(r.id, r.lease) for r in await _svc(request).list(tenant_id)]


@router.get("/leases/{lease_id}", response_model=LeaseOut, responses=_RESPONSES)
async def get_lease(
    request: Request,
    tenant_id: TenantPath,
    lease_id: Annotated[str, Path(max_length=64)],
    _who: Annotated[Principal, Depends(require("leases:read"))],
) -> LeaseOut:
    """One lease."""
    return _out(lease_id, await _svc(request).get(tenant_id, lease_id))


@router.post("/lease-changes", status_code=201, response_model=LeaseChangeOut, responses=_RESPONSES)
async def request_change(
    request: Request,
    tenant_id: TenantPath,
    body: LeaseChangeIn,
    who: Annotated[Principal, Depends(require("tenants:write"))],
) -> LeaseChangeOut:
    """File a change with its effective date; too short a notice is refused (409).

    Working days are counted on the platform calendar (`/api/v1/calendar/{year}`) from the
    request's date in the tenant's time zone.
    """
    filed = await _svc(request).request_change(
        who,
        tenant_id,
        body.kind,
        body.effective_on,
        dict(body.seats) if body.seats is not None else None,
        override=body.override_notice,
    )
    return LeaseChangeOut(
        id=filed.record.id, calendar_loaded=filed.calendar_loaded, **body.model_dump()
    )


@router.get("/utilisation", response_model=UtilisationOut, responses=_RESPONSES)
async def utilisation(
    request: Request,
    tenant_id: TenantPath,
    _who: Annotated[Principal, Depends(require("leases:read"))],
    year: Annotated[Int64, Query(ge=2020, le=2100)],
    month: Annotated[Int64, Query(ge=1, le=12)],
) -> UtilisationOut:
    """Per hour: peak concurrent signed-in seats vs leased; per month: seats actually used."""
    result = await _svc(request).utilisation(tenant_id, year, month)
    return UtilisationOut(
        hours=[
            UtilisationHourOut(hour=h.hour, kind=h.kind, peak=h.peak, leased=h.leased)
            for h in result.hours
        ],
        month_seats_used=result.month_seats_used,
    )
