"""Monthly statements per tenant: seat or per-call model, SLA deduction, VAT, states and trail."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Protocol

from ccbridge.domain.access import AccessDeniedError, Principal
from ccbridge.domain.billing.per_call import per_call_fee
from ccbridge.domain.billing.seat_usage import SeatUsage, seats_used
from ccbridge.domain.billing.statement import (
    BillingModel,
    Statement,
    StatementLine,
    StatementState,
    StatementTransitionError,
    Transition,
    deadlines,
    totals,
)
from ccbridge.domain.calendar import tenant_zone
from ccbridge.domain.kpis.facts import call_facts
from ccbridge.domain.kpis.settings import KpiSettings
from ccbridge.domain.leases.model import SeatKind
from ccbridge.domain.leases.utilisation import month_bounds
from ccbridge.domain.sla.stability import sla_outcome
from ccbridge.errors import CcbridgeError, ConflictError, ErrorCode, NotFoundError
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.calendar import TenantZones, WorkingDaysSource
from ccbridge.services.report_ports import ReportSource
from ccbridge.services.seat_ports import LeaseRepo, SeatSessionRepo
from ccbridge.services.sla import SlaService

SEAT_LABELS = {SeatKind.INBOUND: "纯呼入坐席", SeatKind.INBOUND_OUTBOUND: "呼入呼出坐席"}


class StatementStore(Protocol):
    """Stored statements (implemented in ``ccbridge.db.repositories.statements``)."""

    async def add(self, statement: Statement) -> None:
        """Insert; ``ConflictError`` when the tenant's month already has one."""
        ...

    async def get(self, tenant_id: str, year: int, month: int) -> Statement | None:
        """The statement, or None."""
        ...

    async def save(self, statement: Statement) -> None:
        """Store a statement's new trail."""
        ...


class StatementExistsError(ConflictError):
    """The month already has a statement."""


class StatementRefusedError(CcbridgeError):
    """A state change the billing calendar does not allow (409, ``reason`` says which)."""

    code = ErrorCode.CONFLICT
    status = 409
    title = "Conflict"


@dataclass(frozen=True, slots=True)
class StatementView:
    """A statement and what follows from today's date (deemed confirmation, late fee)."""

    statement: Statement
    deemed_confirmed: bool
    days_overdue: int
    late_fee: Decimal
    termination_right: bool


class StatementService:
    """Issue a tenant's monthly statement (platform admin) and move it through its states."""

    def __init__(
        self,
        store: StatementStore,
        leases: LeaseRepo,
        sessions: SeatSessionRepo,
        calls: ReportSource,
        sla: SlaService,
        calendar: WorkingDaysSource,
        zones: TenantZones,
        audit: AuditRecorder,
        now: Callable[[], datetime],
    ) -> None:
        self._store = store
        self._leases = leases
        self._sessions = sessions
        self._calls = calls
        self._sla = sla
        self._calendar = calendar
        self._zones = zones
        self._audit = audit
        self._now = now

    async def _seat_lines(
        self, tenant_id: str, start: datetime, end: datetime, usage: SeatUsage | None, zone: str
    ) -> tuple[list[StatementLine], SeatUsage]:
        lease = await self._leases.active_lease(tenant_id, end - timedelta(microseconds=1))
        if lease is None:
            raise NotFoundError(f"tenant {tenant_id} has no lease in force that month")
        usage = usage or lease.seat_usage
        intervals = await self._sessions.intervals(tenant_id, start, end)
        lines = []
        for kind in SeatKind:
            used = seats_used(intervals, kind, start, end, usage, zone)
            price = lease.monthly_price.get(kind, Decimal(0))
            if used > 0:
                amount = (used * price).quantize(Decimal("0.01"))
                lines.append(
                    StatementLine(f"{SEAT_LABELS[kind]} ({usage.value})", used, price, amount)
                )
        return lines, usage

    async def _per_call_lines(
        self,
        tenant_id: str,
        start: datetime,
        end: datetime,
        zone: str,
        contract_month: int,
        adjustments: Decimal,
    ) -> list[StatementLine]:
        calls = await self._calls.calls(tenant_id, start, end)
        cal = await self._calendar.calendar(start.date(), end.date())
        settings = KpiSettings(timezone=zone)
        ordinary = holiday = 0
        for rec in calls:
            if not call_facts(rec, settings).billable:
                continue
            if rec.started_at.astimezone(tenant_zone(zone)).date() in cal.holidays:
                holiday += 1
            else:
                ordinary += 1
        fee = per_call_fee(ordinary, holiday, contract_month, adjustments=adjustments)
        lines = [
            StatementLine("15秒以上通话量", Decimal(ordinary), fee.unit_price, fee.ordinary_amount)
        ]
        if holiday:
            lines.append(
                StatementLine(
                    "法定节假日加班通话量 (×3)",
                    Decimal(holiday),
                    fee.unit_price * 3,
                    fee.holiday_amount,
                )
            )
        if adjustments:
            lines.append(StatementLine("质检、规范奖罚", Decimal(1), adjustments, adjustments))
        return lines

    async def issue(
        self,
        who: Principal,
        tenant_id: str,
        year: int,
        month: int,
        model: BillingModel,
        *,
        seat_usage: SeatUsage | None = None,
        contract_month: int = 3,
        adjustments: Decimal = Decimal(0),
    ) -> StatementView:
        """Compute and store the month's statement in state ``issued`` (platform admin).

        ``seat_usage`` overrides the lease's own setting for this statement.
        """
        if not who.is_platform:
            raise AccessDeniedError("only the platform admin issues statements")
        zone = await self._zones.zone_of(tenant_id)
        if await self._store.get(tenant_id, year, month) is not None:
            raise StatementExistsError(
                f"{tenant_id} already has a statement for {year}-{month:02d}"
            )
        start, end = month_bounds(year, month, zone)
        if model is BillingModel.SEATS:
            lines, used_by = await self._seat_lines(tenant_id, start, end, seat_usage, zone)
            basis = f"seat usage: {used_by.value}"
        else:
            lines = await self._per_call_lines(
                tenant_id, start, end, zone, contract_month, adjustments
            )
            basis = f"contract month {contract_month}"
        subtotal = totals(lines, None).subtotal
        monthly = await self._sla.monthly(tenant_id, year, month)
        outcome = sla_outcome(monthly.stability_percent, subtotal)
        now = self._now()
        today = now.astimezone(tenant_zone(zone)).date()
        cal = await self._calendar.calendar(today, today + timedelta(days=31))
        statement = Statement(
            tenant_id,
            year,
            month,
            model,
            tuple(lines),
            outcome,
            deadlines(year, month, today, cal),
            (Transition(StatementState.ISSUED, now, who.actor, basis),),
        )
        await self._store.add(statement)
        await self._audit.record(
            who,
            tenant_id,
            "statement.issue",
            "statement",
            f"{year}-{month:02d}",
            {"total": str(statement.totals.total)},
        )
        return self._view(statement, today)

    async def get(self, tenant_id: str, year: int, month: int) -> StatementView:
        """The statement with today's deemed confirmation, overdue days and late fee."""
        zone = await self._zones.zone_of(tenant_id)
        found = await self._store.get(tenant_id, year, month)
        if found is None:
            raise NotFoundError(f"no statement for {year}-{month:02d}")
        return self._view(found, self._now().astimezone(tenant_zone(zone)).date())

    async def advance(
        self,
        who: Principal,
        tenant_id: str,
        year: int,
        month: int,
        to: StatementState,
        note: str = "",
    ) -> StatementView:
        """Confirm (the tenant's admin or the platform), invoice or mark paid (platform)."""
        if to is not StatementState.CONFIRMED and not who.is_platform:
            raise AccessDeniedError("only the platform admin invoices or records payment")
        view = await self.get(tenant_id, year, month)
        try:
            moved = view.statement.advance(to, self._now(), who.actor, note)
        except StatementTransitionError as exc:
            raise StatementRefusedError(str(exc), field="to") from exc
        await self._store.save(moved)
        await self._audit.record(
            who,
            tenant_id,
            f"statement.{to.value}",
            "statement",
            f"{year}-{month:02d}",
            {"note": note},
        )
        return await self.get(tenant_id, year, month)

    @staticmethod
    def _view(s: Statement, today: date) -> StatementView:
        return StatementView(
            s,
            s.deemed_confirmed(today),
            s.days_overdue(today),
            s.late_fee(today),
            s.termination_right(today),
        )
