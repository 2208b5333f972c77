"""Push-export jobs, their per-file state, and signed purge reports in SQL."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.db.recording_tables import ExportFileRow, ExportJobRow, PurgeReportRow
from ccbridge.domain.recordings.export import ExportFile, ExportJob, ExportStatus


def _job(row: ExportJobRow) -> ExportJob:
    return ExportJob(
        id=row.id,
        tenant=row.tenant,
        kind=row.kind,
        range_from=row.range_from,
        range_to=row.range_to,
        status=ExportStatus(row.status),
        total_files=row.total_files,
        sent_files=row.sent_files,
        total_bytes=row.total_bytes,
        sent_bytes=row.sent_bytes,
        attempts=row.attempts,
        error=row.error,
        report=row.report,
        created_at=row.created_at,
        finished_at=row.finished_at,
    )


def _file(row: ExportFileRow) -> ExportFile:
    return ExportFile(
        job_id=row.job_id,
        recording_id=row.recording_id,
        remote_path=row.remote_path,
        size_bytes=row.size_bytes,
        sha256=row.sha256,
        sent=row.status == "sent",
        sent_at=row.sent_at,
    )


class ExportRepository:
    """Implements ``services.recording_ports.ExportStore``."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        """Keep the factory; every method uses its own short session."""
        self._sessions = session_factory

    async def create(self, job: ExportJob, files: Sequence[ExportFile]) -> None:
        """Store a new job and its file list in one transaction."""
        async with self._sessions() as session:
            session.add(
                ExportJobRow(
                    id=job.id,
                    tenant=job.tenant,
                    kind=job.kind,
                    range_from=job.range_from,
                    range_to=job.range_to,
                    status=job.status.value,
                    total_files=job.total_files,
                    sent_files=job.sent_files,
                    total_bytes=job.total_bytes,
                    sent_bytes=job.sent_bytes,
                    attempts=job.attempts,
                    error=job.error,
                    report=job.report,
                    created_at=job.created_at,
                    finished_at=job.finished_at,
                )
            )
            for f in files:
                session.add(
                    ExportFileRow(
                        job_id=f.job_id,
                        recording_id=f.recording_id,
                        remote_path=f.remote_path,
                        size_bytes=f.size_bytes,
                        sha256=f.sha256,
                        status="sent" if f.sent else "pending",
                        sent_at=f.sent_at,
                    )
                )
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

    async def add_purge_report(
        self, report_id: str, tenant: str, at: datetime, manifest: dict[str, Any], signature: str
    ) -> None:
        """Keep a signed purge report (it names files and counts, no customer data)."""
        async with self._sessions() as session:
            session.add(
                PurgeReportRow(
                    id=report_id,
                    tenant=tenant,
                    created_at=at,
                    manifest=manifest,
                    signature=signature,
                )
            )
            await session.commit()

    async def purge_report(self, report_id: str) -> tuple[dict[str, Any], str] | None:
        """A stored report's manifest and signature."""
        async with self._sessions() as session:
            row = await session.get(PurgeReportRow, report_id)
            return None if row is None else (dict(row.manifest), row.signature)
