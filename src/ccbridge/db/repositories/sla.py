"""The SLA incident log over ``sla_incidents``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.db.sla_tables import SlaFaultReportRow, SlaIncidentRow
from ccbridge.domain.sla.incidents import Exclusion, ExclusionReason, Incident, IncidentSource
from ccbridge.services.sla import FaultReport, FaultStatus


def _exclusion_json(e: Exclusion | None) -> dict[str, Any] | None:
    if e is None:
        return None
    return {"reason": e.reason.value, "by": e.by, "note": e.note, "at": e.at.isoformat()}


def _incident(row: SlaIncidentRow) -> Incident:
    e = row.exclusion
    return Incident(
        id=row.id,
        started_at=row.started_at,
        ended_at=row.ended_at,
        cause=row.cause,
        source=IncidentSource(row.source),
        tenants=None if row.tenants is None else frozenset(row.tenants),
        exclusion=None
        if e is None
        else Exclusion(
            ExclusionReason(e["reason"]), e["by"], e["note"], datetime.fromisoformat(e["at"])
        ),
    )


class SqlIncidentStore:
    """``services.sla.IncidentStore`` over SQL."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        """Keep the factory."""
        self._sessions = session_factory

    async def add(self, incident: Incident, by: str, at: datetime) -> None:
        """Insert the incident."""
        async with self._sessions() as db, db.begin():
            db.add(
                SlaIncidentRow(
                    id=incident.id,
                    started_at=incident.started_at,
                    ended_at=incident.ended_at,
                    cause=incident.cause,
                    source=incident.source.value,
                    tenants=None if incident.tenants is None else sorted(incident.tenants),
                    exclusion=_exclusion_json(incident.exclusion),
                    created_at=at,
                    created_by=by,
                )
            )

    async def get(self, incident_id: str) -> Incident | None:
        """The incident, or None."""
        async with self._sessions() as db:
            row = await db.get(SlaIncidentRow, incident_id)
        return None if row is None else _incident(row)

    async def save(self, incident: Incident) -> bool:
        """Replace the mutable fields; say whether the incident exists."""
        stmt = (
            update(SlaIncidentRow)
            .where(SlaIncidentRow.id == incident.id)
            .values(
                ended_at=incident.ended_at,
                cause=incident.cause,
                tenants=None if incident.tenants is None else sorted(incident.tenants),
                exclusion=_exclusion_json(incident.exclusion),
            )
            .returning(SlaIncidentRow.id)
        )
        async with self._sessions() as db, db.begin():
            return bool((await db.execute(stmt)).all())

    async def delete(self, incident_id: str) -> bool:
        """Delete; say whether it existed."""
        stmt = (
            delete(SlaIncidentRow)
            .where(SlaIncidentRow.id == incident_id)
            .returning(SlaIncidentRow.id)
        )
        async with self._sessions() as db, db.begin():
            return bool((await db.execute(stmt)).all())

    async def overlapping(self, start: datetime, end: datetime) -> list[Incident]:
        """Incidents overlapping ``[start, end)`` by start time."""
        stmt = (
            select(SlaIncidentRow)
            .where(
                SlaIncidentRow.started_at < end,
                or_(SlaIncidentRow.ended_at.is_(None), SlaIncidentRow.ended_at > start),
            )
            .order_by(SlaIncidentRow.started_at, SlaIncidentRow.id)
        )
        async with self._sessions() as db:
            return [_incident(r) for r in (await db.execute(stmt)).scalars().all()]

    async def open_automatic(self, cause: str) -> Incident | None:
        """The open automatic incident with this cause."""
        stmt = (
            select(SlaIncidentRow)
            .where(
                SlaIncidentRow.source == IncidentSource.AUTOMATIC.value,
                SlaIncidentRow.cause == cause,
                SlaIncidentRow.ended_at.is_(None),
            )
            .order_by(SlaIncidentRow.started_at.desc())
            .limit(1)
        )
        async with self._sessions() as db:
            row = (await db.execute(stmt)).scalars().first()
        return None if row is None else _incident(row)


def _fault(row: SlaFaultReportRow) -> FaultReport:
    return FaultReport(
        id=row.id,
        tenant_id=row.tenant_id,
        reported_at=row.reported_at,
        reported_by=row.reported_by,
        noticed_at=row.noticed_at,
        summary=row.summary,
        status=FaultStatus(row.status),
        incident_id=row.incident_id,
        decided_by=row.decided_by,
        note=row.note,
    )


class SqlFaultReportStore:
    """``services.sla.FaultReportStore`` over ``sla_fault_reports``."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        """Keep the factory."""
        self._sessions = session_factory

    async def add(self, report: FaultReport) -> None:
        """Insert the report."""
        async with self._sessions() as db, db.begin():
            db.add(
                SlaFaultReportRow(
                    id=report.id,
                    tenant_id=report.tenant_id,
                    reported_at=report.reported_at,
                    reported_by=report.reported_by,
                    noticed_at=report.noticed_at,
                    summary=report.summary,
                    status=report.status.value,
                    incident_id=report.incident_id,
                    decided_by=report.decided_by,
                    note=report.note,
                )
            )

    async def get(self, report_id: str) -> FaultReport | None:
        """The report, or None."""
        async with self._sessions() as db:
            row = await db.get(SlaFaultReportRow, report_id)
        return None if row is None else _fault(row)

    async def save(self, report: FaultReport) -> None:
        """Store the decision fields."""
        stmt = (
            update(SlaFaultReportRow)
            .where(SlaFaultReportRow.id == report.id)
            .values(
                status=report.status.value,
                incident_id=report.incident_id,
                decided_by=report.decided_by,
                note=report.note,
            )
        )
        async with self._sessions() as db, db.begin():
            await db.execute(stmt)

    async def list(self, tenant_id: str | None) -> list[FaultReport]:
        """Newest first, at most 1,000."""
        stmt = select(SlaFaultReportRow)
        if tenant_id is not None:
            stmt = stmt.where(SlaFaultReportRow.tenant_id == tenant_id)
        stmt = stmt.order_by(SlaFaultReportRow.reported_at.desc()).limit(1000)
        async with self._sessions() as db:
            return [_fault(r) for r in (await db.execute(stmt)).scalars().all()]
