"""The stability SLA: the incident log, automatic incidents, the monthly figure per tenant."""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Protocol

from ccbridge.domain.access import AccessDeniedError, Principal
from ccbridge.domain.leases.utilisation import month_bounds
from ccbridge.domain.sla.detector import OutageDetector, OutageEnded, OutageStarted
from ccbridge.domain.sla.incidents import (
    Exclusion,
    ExclusionReason,
    Incident,
    IncidentSource,
    fault_minutes,
)
from ccbridge.domain.sla.stability import SlaTier, sla_outcome, stability_percent
from ccbridge.errors import ConflictError, NotFoundError
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.calendar import TenantZones


class IncidentStore(Protocol):
    """The incident log (implemented in ``ccbridge.db.repositories.sla``)."""

    async def add(self, incident: Incident, by: str, at: datetime) -> None:
        """Insert a new incident."""
        ...

    async def get(self, incident_id: str) -> Incident | None:
        """The incident, or None."""
        ...

    async def save(self, incident: Incident) -> bool:
        """Replace an existing incident's times, cause, tenants and exclusion; say if found."""
        ...

    async def delete(self, incident_id: str) -> bool:
        """Remove the incident; say whether it existed."""
        ...

    async def overlapping(self, start: datetime, end: datetime) -> builtins.list[Incident]:
        """Incidents overlapping ``[start, end)`` (open ones included), by start time."""
        ...

    async def open_automatic(self, cause: str) -> Incident | None:
        """The open automatic incident with this cause, if any."""
        ...


class FaultStatus(StrEnum):
    """Where a tenant's fault report stands."""

    OPEN = "open"
    PROMOTED = "promoted"
    """Confirmed: it became an incident that counts against stability."""
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class FaultReport:
    """A fault a tenant reported (the contract's 5×8 fault hotline, 000:188)."""

    id: str
    tenant_id: str
    reported_at: datetime
    reported_by: str
    noticed_at: datetime
    summary: str
    status: FaultStatus = FaultStatus.OPEN
    incident_id: str | None = None
    decided_by: str | None = None
    note: str = ""


class FaultReportStore(Protocol):
    """Tenants' fault reports (implemented in ``ccbridge.db.repositories.sla``)."""

    async def add(self, report: FaultReport) -> None:
        """Insert a new report."""
        ...

    async def get(self, report_id: str) -> FaultReport | None:
        """The report, or None."""
        ...

    async def save(self, report: FaultReport) -> None:
        """Store the report's decision."""
        ...

    async def list(self, tenant_id: str | None) -> builtins.list[FaultReport]:
        """Reports newest first, of one tenant or (None) of all."""
        ...


class IncidentNotFoundError(NotFoundError):
    """No such incident."""


@dataclass(frozen=True, slots=True)
class MonthlySla:
    """One tenant's stability for a month, and F2 applied to its bill when one is given."""

    tenant_id: str
    year: int
    month: int
    days: int
    fault_minutes: float
    stability_percent: Decimal
    tier: SlaTier
    pay_fraction: Decimal
    report_required: bool
    incidents: list[Incident]
    bill: Decimal | None = None
    payable: Decimal | None = None
    deduction: Decimal | None = None


def _platform(who: Principal) -> None:
    if not who.is_platform:
        raise AccessDeniedError("only the platform admin keeps the incident log")


class SlaService:
    """Keep the incident log (platform admin) and compute each tenant's monthly figure."""

    def __init__(
        self,
        store: IncidentStore,
        zones: TenantZones,
        audit: AuditRecorder,
        now: Callable[[], datetime],
        faults: FaultReportStore | None = None,
    ) -> None:
        self._store = store
        self._faults = faults
        self._zones = zones
        self._audit = audit
        self._now = now

    async def record(
        self,
        who: Principal,
        started_at: datetime,
        ended_at: datetime | None,
        cause: str,
        tenants: Collection[str] | None,
        source: IncidentSource = IncidentSource.OPERATOR,
    ) -> Incident:
        """Log an incident (``tenants`` None: every tenant)."""
        _platform(who)
        incident = Incident(
            str(uuid.uuid4()),
            started_at,
            ended_at,
            cause,
            source,
            None if tenants is None else frozenset(tenants),
        )
        await self._store.add(incident, who.actor, self._now())
        await self._audit.record(
            who,
            None,
            "sla.incident.create",
            "sla_incident",
            incident.id,
            {"cause": cause, "source": source.value},
        )
        return incident

    async def get(self, who: Principal, incident_id: str) -> Incident:
        """One incident (platform admin)."""
        _platform(who)
        found = await self._store.get(incident_id)
        if found is None:
            raise IncidentNotFoundError(f"no incident {incident_id}")
        return found

    async def update(
        self,
        who: Principal,
        incident_id: str,
        *,
        ended_at: datetime | None,
        cause: str | None = None,
    ) -> Incident:
        """Set the end (close it) or correct the cause."""
        old = await self.get(who, incident_id)
        new = replace(old, ended_at=ended_at, cause=cause or old.cause)
        await self._store.save(new)
        await self._audit.record(
            who,
            None,
            "sla.incident.update",
            "sla_incident",
            incident_id,
            {"ended_at": ended_at.isoformat() if ended_at else None},
        )
        return new

    async def exclude(
        self, who: Principal, incident_id: str, reason: ExclusionReason | None, note: str = ""
    ) -> Incident:
        """Exclude the incident as a non-business fault (BILL-08), or count it again (None)."""
        old = await self.get(who, incident_id)
        exclusion = None if reason is None else Exclusion(reason, who.actor, note, self._now())
        new = replace(old, exclusion=exclusion)
        await self._store.save(new)
        await self._audit.record(
            who,
            None,
            "sla.incident.exclude",
            "sla_incident",
            incident_id,
            {"reason": reason.value if reason else None, "note": note},
        )
        return new

    async def delete(self, who: Principal, incident_id: str) -> None:
        """Remove an incident logged in error."""
        await self.get(who, incident_id)
        await self._store.delete(incident_id)
        await self._audit.record(who, None, "sla.incident.delete", "sla_incident", incident_id, {})

    async def list(self, who: Principal, start: datetime, end: datetime) -> builtins.list[Incident]:
        """Incidents overlapping ``[start, end)``."""
        _platform(who)
        return await self._store.overlapping(start, end)

    async def monthly(
        self, tenant_id: str, year: int, month: int, bill: Decimal | None = None
    ) -> MonthlySla:
        """F1 for the tenant-local month; with ``bill``, F2's payable and deduction."""
        zone = await self._zones.zone_of(tenant_id)
        start, end = month_bounds(year, month, zone)
        incidents = [i for i in await self._store.overlapping(start, end) if i.affects(tenant_id)]
        now = self._now()
        minutes = fault_minutes(incidents, tenant_id, start, end, now)
        days = round((end - start).total_seconds() / 86400)
        percent = stability_percent(minutes, days)
        outcome = sla_outcome(percent, bill if bill is not None else Decimal(0))
        return MonthlySla(
            tenant_id,
            year,
            month,
            days,
            round(minutes, 4),
            percent,
            outcome.tier,
            outcome.pay_fraction,
            outcome.report_required,
            incidents,
            bill,
            outcome.payable if bill is not None else None,
            outcome.deduction if bill is not None else None,
        )

    def _fault_store(self) -> FaultReportStore:
        if self._faults is None:
            raise NotFoundError("fault reports are not kept by this process")
        return self._faults

    async def report_fault(
        self, who: Principal, tenant_id: str, summary: str, noticed_at: datetime | None
    ) -> FaultReport:
        """File a tenant's fault report; it counts only once the provider promotes it."""
        await self._zones.zone_of(tenant_id)
        now = self._now()
        report = FaultReport(
            str(uuid.uuid4()), tenant_id, now, who.actor, noticed_at or now, summary
        )
        await self._fault_store().add(report)
        await self._audit.record(
            who, tenant_id, "sla.fault.report", "sla_fault_report", report.id, {"summary": summary}
        )
        return report

    async def faults(self, tenant_id: str | None) -> builtins.list[FaultReport]:
        """Fault reports of a tenant (or all, for the platform admin's queue)."""
        return await self._fault_store().list(tenant_id)

    async def _open_fault(self, who: Principal, report_id: str) -> FaultReport:
        _platform(who)
        found = await self._fault_store().get(report_id)
        if found is None:
            raise IncidentNotFoundError(f"no fault report {report_id}")
        if found.status is not FaultStatus.OPEN:
            raise FaultAlreadyDecidedError(f"fault report {report_id} is {found.status.value}")
        return found

    async def promote_fault(
        self,
        who: Principal,
        report_id: str,
        started_at: datetime | None,
        ended_at: datetime | None,
        cause: str | None,
    ) -> tuple[FaultReport, Incident]:
        """Confirm a fault report: it becomes an incident of that tenant (source
        ``tenant_report``), from ``started_at`` (default: when the tenant noticed it)."""
        report = await self._open_fault(who, report_id)
        incident = await self.record(
            who,
            started_at or report.noticed_at,
            ended_at,
            cause or report.summary,
            [report.tenant_id],
            IncidentSource.TENANT_REPORT,
        )
        decided = replace(
            report, status=FaultStatus.PROMOTED, incident_id=incident.id, decided_by=who.actor
        )
        await self._fault_store().save(decided)
        return decided, incident

    async def reject_fault(self, who: Principal, report_id: str, note: str) -> FaultReport:
        """Close a fault report without an incident (e.g. a terminal-side fault), saying why."""
        report = await self._open_fault(who, report_id)
        decided = replace(report, status=FaultStatus.REJECTED, decided_by=who.actor, note=note)
        await self._fault_store().save(decided)
        await self._audit.record(
            who, report.tenant_id, "sla.fault.reject", "sla_fault_report", report_id, {"note": note}
        )
        return decided


class FaultAlreadyDecidedError(ConflictError):
    """The fault report was already promoted or rejected."""


class AutomaticIncidents:
    """Open and close automatic incidents from health samples (e.g. the AMI link)."""

    def __init__(
        self,
        store: IncidentStore,
        now: Callable[[], datetime],
        cause: str,
        detector: OutageDetector | None = None,
    ) -> None:
        self._store = store
        self._now = now
        self._cause = cause
        self._detector = detector or OutageDetector()
        self._resumed = False

    async def sample(self, healthy: bool) -> None:
        """Feed one health sample; open or close the incident when the detector says so."""
        if not self._resumed:
            self._resumed = True
            still_open = await self._store.open_automatic(self._cause)
            if still_open is not None:
                self._detector.resume(still_open.started_at)
        decision = self._detector.observe(healthy, self._now())
        if isinstance(decision, OutageStarted):
            incident = Incident(
                str(uuid.uuid4()), decision.since, None, self._cause, IncidentSource.AUTOMATIC
            )
            await self._store.add(incident, "ccbridge", self._now())
        elif isinstance(decision, OutageEnded):
            found = await self._store.open_automatic(self._cause)
            if found is not None:
                await self._store.save(replace(found, ended_at=decision.at))
