"""Seat leases: contracts per tenant, change requests with notice periods, utilisation."""

from __future__ import annotations

import builtins
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from ccbridge.domain.access import AccessDeniedError, Principal
from ccbridge.domain.agents.policy import Refused
from ccbridge.domain.leases.model import (
    ChangeKind,
    LeaseChange,
    SeatKind,
    SeatLease,
    check_notice,
)
from ccbridge.domain.leases.utilisation import (
    HourlyPeak,
    hourly_peaks,
    month_bounds,
    monthly_seats_used,
)
from ccbridge.errors import NotFoundError
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.calendar import NoticeCalendar, TenantZones
from ccbridge.services.seat_ports import LeaseChangeRecord, LeaseRecord, LeaseRepo, SeatSessionRepo
from ccbridge.services.seats import SeatRefusedError, lease_in_force


@dataclass(frozen=True, slots=True)
class Utilisation:
    """Per-hour peaks against the lease, and the month's seats actually used per kind."""

    hours: list[HourlyPeak]
    month_seats_used: dict[SeatKind, int]


@dataclass(frozen=True, slots=True)
class FiledChange:
    """A stored change request, and whether its notice was counted on a loaded calendar."""

    record: LeaseChangeRecord
    calendar_loaded: bool


class LeaseService:
    """Create leases (platform admin), take change requests, report utilisation."""

    def __init__(
        self,
        leases: LeaseRepo,
        sessions: SeatSessionRepo,
        audit: AuditRecorder,
        now: Callable[[], datetime],
        *,
        calendar: NoticeCalendar,
        zones: TenantZones,
    ) -> None:
        self._leases = leases
        self._sessions = sessions
        self._audit = audit
        self._now = now
        self._calendar = calendar
        self._zones = zones

    async def create(self, who: Principal, lease: SeatLease) -> LeaseRecord:
        """Store a new lease for ``lease.tenant`` (platform admin only)."""
        if not who.is_platform:
            raise AccessDeniedError("only the platform admin may create leases")
        record = await self._leases.create(lease)
        await self._audit.record(
            who, lease.tenant, "lease.create", "lease", record.id, _lease_detail(lease)
        )
        return record

    async def list(self, tenant_id: str) -> builtins.list[LeaseRecord]:
        """The tenant's leases by start date."""
        return await self._leases.list(tenant_id)

    async def get(self, tenant_id: str, lease_id: str) -> SeatLease:
        """One lease (another tenant's is not found)."""
        lease = await self._leases.get(tenant_id, lease_id)
        if lease is None:
            raise NotFoundError(f"lease {lease_id} not found")
        return lease

    async def in_force(self, tenant_id: str, at: datetime) -> SeatLease | None:
        """The lease as in force at ``at``: the active lease with due seat changes applied."""
        return await lease_in_force(self._leases, tenant_id, at)

    async def request_change(
        self,
        who: Principal,
        tenant_id: str,
        kind: ChangeKind,
        effective_on: date,
        seats: dict[SeatKind, int] | None,
        *,
        override: bool = False,
    ) -> FiledChange:
        """File a change; 7 working days' notice for seats, 1 for skill groups (admin override).

        The notice is counted in working days of the platform calendar from the request's date
        in the tenant's own time zone.
        """
        if override and not who.is_platform:
            raise AccessDeniedError("only the platform admin may waive the notice period")
        now = self._now()
        timezone = await self._zones.zone_of(tenant_id)
        notice = await self._calendar.notice(kind, now, timezone)
        change = LeaseChange(
            tenant=tenant_id,
            kind=kind,
            requested_at=now,
            effective_on=effective_on,
            seats=seats,
            override_by=who.actor if override else None,
        )
        decision = check_notice(change, notice.earliest, timezone)
        if isinstance(decision, Refused):
            raise SeatRefusedError(decision)
        record = await self._leases.add_change(change)
        await self._audit.record(
            who,
            tenant_id,
            "lease.change_requested",
            "lease_change",
            record.id,
            {
                "kind": kind.value,
                "effective_on": effective_on.isoformat(),
                "seats": {k.value: v for k, v in (seats or {}).items()},
                "override_by": change.override_by,
                "earliest": notice.earliest.isoformat(),
                "timezone": timezone,
                "calendar_loaded": notice.calendar_loaded,
            },
        )
        return FiledChange(record, notice.calendar_loaded)

    async def utilisation(self, tenant_id: str, year: int, month: int) -> Utilisation:
        """Hourly peak concurrent sign-ins vs leased seats, and the month's seats used."""
        start, end = month_bounds(year, month)
        intervals = await self._sessions.intervals(tenant_id, start, end)
        lease = await self.in_force(tenant_id, min(end, max(start, self._now())))
        leased = dict(lease.seats) if lease else {}
        return Utilisation(
            hours=hourly_peaks(intervals, start, min(end, self._now()), leased),
            month_seats_used=monthly_seats_used(intervals, year, month),
        )


def _lease_detail(lease: SeatLease) -> dict[str, object]:
    return {
        "seats": {k.value: v for k, v in lease.seats.items()},
        "valid_from": lease.valid_from.isoformat(),
        "valid_until": lease.valid_until.isoformat() if lease.valid_until else None,
        "monthly_price": {k.value: str(v) for k, v in lease.monthly_price.items()},
    }
