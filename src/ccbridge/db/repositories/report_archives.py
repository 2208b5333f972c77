"""Archived scheduled reports (``report_archives``): claim once per period, progress, file."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.db.access_tables import TenantRow
from ccbridge.db.report_tables import ReportArchiveRow
from ccbridge.domain.reports.model import ReportKind
from ccbridge.domain.reports.schedule import Period
from ccbridge.services.report_ports import ArchiveState, ReportArchive

_META = tuple(c for c in ReportArchiveRow.__table__.c if c.name != "body")


def _archive(r: Any) -> ReportArchive:
    return ReportArchive(
        id=r.id,
        tenant_id=r.tenant_id,
        report=ReportKind(r.report),
        period=Period(r.period),
        first_day=r.first_day,
        last_day=r.last_day,
        format=r.format,
        state=ArchiveState(r.state),
        progress=r.progress,
        rows=r.rows,
        size=r.size,
        sha256=r.sha256,
        error=r.error,
        created_at=r.created_at,
        updated_at=r.updated_at,
    )


class SqlReportArchives:
    """``services.report_ports.ReportArchiveStore`` over ``report_archives``."""

    def __init__(self, session_factory: async_sessionmaker[AsyncSession]) -> None:
        """Keep the factory; each method is one short transaction."""
        self._sessions = session_factory

    async def tenant_ids(self) -> builtins.list[str]:
        """Every tenant id."""
        async with self._sessions() as db:
            return builtins.list(
                (await db.execute(select(TenantRow.id).order_by(TenantRow.id))).scalars()
            )

    async def claim(self, archive: ReportArchive, stale_before: datetime) -> ReportArchive | None:
        """Insert-if-absent on the period key; else take over a failed or stale run."""
        t = ReportArchiveRow
        values = {
            "id": archive.id,
            "tenant_id": archive.tenant_id,
            "report": archive.report.value,
            "period": archive.period.value,
            "first_day": archive.first_day,
            "last_day": archive.last_day,
            "format": archive.format,
            "state": ArchiveState.RUNNING.value,
            "progress": 0,
            "created_at": archive.created_at,
            "updated_at": archive.updated_at,
        }
        async with self._sessions() as db, db.begin():
            dialect = db.get_bind().dialect.name
            ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(t)
            inserted = (
                await db.execute(
                    ins.values(**values)
                    .on_conflict_do_nothing(
                        index_elements=["tenant_id", "report", "period", "first_day"]
                    )
                    .returning(t.id)
                )
            ).scalar()
            if inserted is None:
                inserted = (
                    await db.execute(
                        update(t)
                        .where(
                            t.tenant_id == archive.tenant_id,
                            t.report == archive.report.value,
                            t.period == archive.period.value,
                            t.first_day == archive.first_day,
                            or_(
                                t.state == ArchiveState.FAILED.value,
                                (t.state == ArchiveState.RUNNING.value)
                                & (t.updated_at < stale_before),
                            ),
                        )
                        .values(
                            state=ArchiveState.RUNNING.value,
                            progress=0,
                            error=None,
                            updated_at=archive.updated_at,
                        )
                        .returning(t.id)
                    )
                ).scalar()
            if inserted is None:
                return None
            row = (await db.execute(select(*_META).where(t.id == inserted))).one()
        return _archive(row)

    async def _set(self, archive_id: str, **values: object) -> None:
        async with self._sessions() as db, db.begin():
            await db.execute(
                update(ReportArchiveRow).where(ReportArchiveRow.id == archive_id).values(**values)
            )

    async def progress(self, archive_id: str, progress: int, at: datetime) -> None:
        """Record the progress."""
        await self._set(archive_id, progress=progress, updated_at=at)

    async def finish(
        self, archive_id: str, body: bytes, sha256: str, rows: int, at: datetime
    ) -> None:
        """Store the file; done at 100 %."""
        await self._set(
            archive_id,
            body=body,
            sha256=sha256,
            size=len(body),
            rows=rows,
            state=ArchiveState.DONE.value,
            progress=100,
            updated_at=at,
        )

    async def fail(self, archive_id: str, error: str, at: datetime) -> None:
        """Mark it failed with the error's text."""
        await self._set(
            archive_id, state=ArchiveState.FAILED.value, error=error[:500], updated_at=at
        )

    async def list(
        self, tenant_id: str, report: ReportKind | None, period: Period | None, limit: int
    ) -> builtins.list[ReportArchive]:
        """Newest first (index ``ix_report_archives_tenant_id_first_day``)."""
        t = ReportArchiveRow
        stmt = select(*_META).where(t.tenant_id == tenant_id)
        if report is not None:
            stmt = stmt.where(t.report == report.value)
        if period is not None:
            stmt = stmt.where(t.period == period.value)
        stmt = stmt.order_by(t.first_day.desc(), t.period, t.report).limit(limit)
        async with self._sessions() as db:
            return [_archive(r) for r in (await db.execute(stmt)).all()]

    async def get(self, tenant_id: str, archive_id: str) -> ReportArchive | None:
        """The archive when it is the tenant's."""
        t = ReportArchiveRow
        async with self._sessions() as db:
            row = (
                await db.execute(select(*_META).where(t.id == archive_id, t.tenant_id == tenant_id))
            ).one_or_none()
        return None if row is None else _archive(row)

    async def body(self, tenant_id: str, archive_id: str) -> bytes | None:
        """The file of a done archive of the tenant."""
        t = ReportArchiveRow
        async with self._sessions() as db:
            return (
                await db.execute(
                    select(t.body).where(
                        t.id == archive_id,
                        t.tenant_id == tenant_id,
                        t.state == ArchiveState.DONE.value,
                    )
                )
            ).scalar()
