"""Push-export jobs, their per-file state, signed purge reports and off-boardings in SQL."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.db.recording_tables import (
    ExportFileRow,
    ExportJobRow,
    OffboardingRow,
    PurgeReportRow,
)
from ccbridge.db.rowmap import record_from_row, row_values
from ccbridge.domain.recordings.export import (
    ExportFile,
    ExportJob,
    ExportStatus,
    Offboarding,
    OffboardingStatus,
)
from ccbridge.services.recording_ports import SignedReport


def _job(row: ExportJobRow) -> ExportJob:
    return record_from_row(ExportJob, row, status=ExportStatus(row.status))


def _file(row: ExportFileRow) -> ExportFile:
    return record_from_row(ExportFile, row, sent=row.status == "sent")


def _offboarding(row: OffboardingRow) -> Offboarding:
    return record_from_row(Offboarding, row, status=OffboardingStatus(row.status))


def _report(row: PurgeReportRow) -> SignedReport:
    return record_from_row(SignedReport, row, manifest=dict(row.manifest))


class ExportRepository:
    """Implements ``services.recording_ports.ExportStore``."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        """Keep the factory; every method uses its own short session."""
        self._sessions = session_factory

    async def create(self, job: ExportJob, files: Sequence[ExportFile]) -> None:
        """Store a new job and its file list in one transaction."""
        async with self._sessions() as session:
            session.add(ExportJobRow(**row_values(job, status=job.status.value)))
            for f in files:
                status = "sent" if f.sent else "pending"
                session.add(ExportFileRow(**row_values(f, skip=("sent",), status=status)))
            await session.commit()

    async def get(self, job_id: str, tenant: str | None = None) -> ExportJob | None:
        """One job; with *tenant*, another tenant's is reported as missing."""
        stmt = select(ExportJobRow).where(ExportJobRow.id == job_id)
        if tenant is not None:
            stmt = stmt.where(ExportJobRow.tenant == tenant)
        async with self._sessions() as session:
            row = (await session.execute(stmt)).scalar_one_or_none()
            return None if row is None else _job(row)

    async def of_tenant(self, tenant: str, limit: int = 50) -> builtins.list[ExportJob]:
        """A tenant's jobs, newest first."""
        stmt = (
            select(ExportJobRow)
            .where(ExportJobRow.tenant == tenant)
            .order_by(ExportJobRow.created_at.desc(), ExportJobRow.id.desc())
            .limit(limit)
        )
        async with self._sessions() as session:
            return [_job(r) for r in (await session.execute(stmt)).scalars()]

    async def unfinished(self) -> builtins.list[ExportJob]:
        """Jobs pending or running (a restart resumes them)."""
        stmt = select(ExportJobRow).where(
            ExportJobRow.status.in_([ExportStatus.PENDING.value, ExportStatus.RUNNING.value])
        )
        async with self._sessions() as session:
            rows = (await session.execute(stmt.order_by(ExportJobRow.created_at))).scalars()
            return [_job(r) for r in rows]

    async def files(self, job_id: str) -> builtins.list[ExportFile]:
        """The job's files in remote-path order."""
        stmt = (
            select(ExportFileRow)
            .where(ExportFileRow.job_id == job_id)
            .order_by(ExportFileRow.remote_path)
        )
        async with self._sessions() as session:
            return [_file(r) for r in (await session.execute(stmt)).scalars()]

    async def mark_sent(self, job_id: str, recording_id: str, now: datetime) -> None:
        """Record one file as delivered and bump the job's counters, atomically."""
        async with self._sessions() as session:
            row = await session.get(ExportFileRow, (job_id, recording_id))
            job = await session.get(ExportJobRow, job_id)
            if row is None or job is None or row.status == "sent":
                return
            row.status, row.sent_at = "sent", now
            job.sent_files += 1
            job.sent_bytes += row.size_bytes
            await session.commit()

    async def update(self, job_id: str, **values: Any) -> None:
        """Change a job's status, attempts, error, report or finish time."""
        if "status" in values and isinstance(values["status"], ExportStatus):
            values["status"] = values["status"].value
        async with self._sessions() as session:
            await session.execute(
                update(ExportJobRow).where(ExportJobRow.id == job_id).values(**values)
            )
            await session.commit()

    async def purge_report(self, report_id: str) -> tuple[dict[str, Any], str] | None:
        """A stored report's manifest and signature."""
        async with self._sessions() as session:
            row = await session.get(PurgeReportRow, report_id)
            return None if row is None else (dict(row.manifest), row.signature)

    async def purge_reports_of(self, tenant: str) -> builtins.list[SignedReport]:
        """Every purge report of *tenant*, oldest first (kept after the tenant's data)."""
        stmt = (
            select(PurgeReportRow)
            .where(PurgeReportRow.tenant == tenant)
            .order_by(PurgeReportRow.created_at)
        )
        async with self._sessions() as session:
            return [_report(r) for r in (await session.execute(stmt)).scalars()]


class OffboardingRepository:
    """Implements ``services.recording_ports.OffboardingStore``."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        """Keep the factory; every method uses its own short session."""
        self._sessions = session_factory

    async def get(self, tenant: str) -> Offboarding | None:
        """The tenant's off-boarding, or ``None`` when none was started."""
        async with self._sessions() as session:
            row = await session.get(OffboardingRow, tenant)
            return None if row is None else _offboarding(row)

    async def put(self, offboarding: Offboarding) -> None:
        """Insert or overwrite the tenant's off-boarding state."""
        values = row_values(offboarding, status=offboarding.status.value)
        async with self._sessions() as session:
            row = await session.get(OffboardingRow, offboarding.tenant)
            if row is None:
                session.add(OffboardingRow(**values))
            else:
                for key, value in values.items():
                    setattr(row, key, value)
            await session.commit()

    async def unfinished(self) -> builtins.list[Offboarding]:
        """Off-boardings a stopped process left neither done nor failed (resumed on start)."""
        final = [OffboardingStatus.DONE.value, OffboardingStatus.FAILED.value]
        stmt = select(OffboardingRow).where(OffboardingRow.status.not_in(final))
        async with self._sessions() as session:
            return [_offboarding(r) for r in (await session.execute(stmt)).scalars()]
