"""Monthly statements per tenant (BILL-01/02, BILL-14..17): issue, read, move through states."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field

from ccbridge.api.security import require
from ccbridge.domain.access import Principal
from ccbridge.domain.billing.seat_usage import SeatUsage
from ccbridge.domain.billing.statement import BillingModel, StatementState
from ccbridge.services.statements import StatementService, StatementView

router = APIRouter(prefix="/api/v1/tenants/{tenant_id}/statements", tags=["statements"])

TenantPath = Annotated[str, Path(max_length=64)]
Year = Annotated[int, Path(ge=2000, le=2100)]
Month = Annotated[int, Path(ge=1, le=12)]
_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"description": "Only the platform admin issues, invoices and records payment"},
    404: {"description": "No such statement or tenant (or another tenant's)"},
    409: {"description": "The month already has a statement, or the state change is refused"},
}


class IssueIn(BaseModel):
    """Which month, under which billing model."""

    year: Annotated[int, Field(ge=2000, le=2100)]
    month: Annotated[int, Field(ge=1, le=12)]
    model: BillingModel
    seat_usage: SeatUsage | None = Field(
        None, description="seats model: override the lease's own seat_usage for this statement"
    )
    contract_month: Annotated[int, Field(ge=1, le=1200)] = Field(
        3, description="per-call model: 1 → 1.68, 2 → 1.49, 3 and later → 1.34 yuan per call"
    )
    adjustments: Annotated[Decimal, Field(ge=-(10**9), le=10**9)] = Field(
        Decimal(0), description="per-call model: QA and compliance rewards (+) or penalties (-)"
    )


class TransitionIn(BaseModel):
    """Confirm (tenant admin or platform), invoice or record payment (platform)."""

    to: StatementState
    note: Annotated[str, Field(max_length=2000)] = ""


class LineOut(BaseModel):
    """One charge."""

    item: str
    quantity: Decimal
    unit_price: Decimal
    amount: Decimal


class TransitionOut(TransitionIn):
    """An entry of the audit trail."""

    at: datetime
    by: str


class StatementOut(BaseModel):
    """A statement with its money, deadlines and life."""

    tenant_id: str
    year: int
    month: int
    model: BillingModel
    state: StatementState
    lines: list[LineOut]
    subtotal: Decimal
    stability_percent: Decimal | None
    sla_tier: str | None
    sla_deduction: Decimal
    net: Decimal
    vat: Decimal
    total: Decimal
    issue_by: date
    confirm_by: date
    payment_due: date
    deemed_confirmed: bool
    days_overdue: int
    late_fee: Decimal
    termination_right: bool
    trail: list[TransitionOut]

    @classmethod
    def of(cls, v: StatementView) -> StatementOut:
        """Render a statement view."""
        s = v.statement
        t = s.totals
        return cls(
            tenant_id=s.tenant,
            year=s.year,
            month=s.month,
            model=s.model,
            state=s.state,
            lines=[
                LineOut(
                    item=ln.item, quantity=ln.quantity, unit_price=ln.unit_price, amount=ln.amount
                )
                for ln in s.lines
            ],
            subtotal=t.subtotal,
            stability_percent=s.sla.stability_percent if s.sla else None,
            sla_tier=s.sla.tier.value if s.sla else None,
            sla_deduction=t.sla_deduction,
            net=t.net,
            vat=t.vat,
            total=t.total,
            issue_by=s.deadlines.issue_by,
            confirm_by=s.deadlines.confirm_by,
            payment_due=s.deadlines.payment_due,
            deemed_confirmed=v.deemed_confirmed,
            days_overdue=v.days_overdue,
            late_fee=v.late_fee,
            termination_right=v.termination_right,
            trail=[TransitionOut(to=x.to, note=x.note, at=x.at, by=x.by) for x in s.trail],
        )


def _svc(request: Request) -> StatementService:
    service: StatementService = request.app.state.statements
    return service


@router.post("", status_code=201, response_model=StatementOut, responses=_RESPONSES)
async def issue_statement(
    request: Request,
    tenant_id: TenantPath,
    body: IssueIn,
    who: Annotated[Principal, Depends(require("reports:write"))],
) -> StatementOut:
    """Compute and issue the month's statement (platform admin)."""
    view = await _svc(request).issue(
        who,
        tenant_id,
        body.year,
        body.month,
        body.model,
        seat_usage=body.seat_usage,
        contract_month=body.contract_month,
        adjustments=body.adjustments,
    )
    return StatementOut.of(view)


@router.get("/{year}/{month}", response_model=StatementOut, responses=_RESPONSES)
async def get_statement(
    request: Request,
    tenant_id: TenantPath,
    year: Year,
    month: Month,
    _who: Annotated[Principal, Depends(require("reports:read"))],
) -> StatementOut:
    """The statement, with deemed confirmation, days overdue and the late fee as of today."""
    return StatementOut.of(await _svc(request).get(tenant_id, year, month))


@router.post("/{year}/{month}/transitions", response_model=StatementOut, responses=_RESPONSES)
async def advance_statement(
    request: Request,
    tenant_id: TenantPath,
    year: Year,
    month: Month,
    body: TransitionIn,
    who: Annotated[Principal, Depends(require("reports:write"))],
) -> StatementOut:
    """Move the statement on: issued → confirmed → invoiced → paid (each step audited)."""
    view = await _svc(request).advance(who, tenant_id, year, month, body.to, body.note)
    return StatementOut.of(view)
