"""Scheduled report generation: each completed period's reports, archived once with a
SHA-256 checksum, listed and downloaded per tenant (RPT-02/03, docs/reports.md)."""

from __future__ import annotations

import builtins
import hashlib
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta

import structlog

from ccbridge.domain.calendar import tenant_zone
from ccbridge.domain.reports.model import ReportKind
from ccbridge.domain.reports.schedule import SCHEDULE, Period, ScheduledReport, last_complete
from ccbridge.errors import NotFoundError
from ccbridge.services.calendar import TenantZones
from ccbridge.services.report_ports import ArchiveState, ReportArchive, ReportArchiveStore
from ccbridge.services.reports import ReportService

log = structlog.get_logger(__name__)

STALE_RUN = timedelta(hours=1)
"""A generation still "running" after this long died with its process; it is taken over."""
ARCHIVE_FORMAT = "xlsx"


class ArchiveNotFoundError(NotFoundError):
    """No such archive for this tenant (another tenant's answers the same)."""


class ReportArchiver:
    """Generate due archives (the periodic job) and serve them to their tenant."""

    def __init__(
        self,
        reports: ReportService,
        store: ReportArchiveStore,
        zones: TenantZones,
        now: Callable[[], datetime],
        per_pass: int = 40,
    ) -> None:
        """*per_pass* bounds the reports one pass generates (the rest follow next pass)."""
        self._reports = reports
        self._store = store
        self._zones = zones
        self._now = now
        self._per_pass = per_pass

    async def run_due(self) -> int:
        """Generate every tenant's reports of the latest completed day, week and month that
        are not archived yet; return how many were generated. Running it twice, or in two
        processes at once, generates each period's report once (the store's claim)."""
        made = 0
        for tenant_id in await self._store.tenant_ids():
            zone = await self._zones.zone_of(tenant_id)
            today = self._now().astimezone(tenant_zone(zone)).date()
            for period, items in SCHEDULE.items():
                first, last = last_complete(period, today)
                for item in items:
                    if made >= self._per_pass:
                        return made
                    if await self.generate(tenant_id, item, period, first, last):
                        made += 1
        return made

    async def generate(
        self,
        tenant_id: str,
        item: ScheduledReport,
        period: Period,
        first: date,
        last: date,
    ) -> bool:
        """Claim and generate one archive; False when it exists or another runner has it."""
        now = self._now()
        claimed = await self._store.claim(
            ReportArchive(
                id=str(uuid.uuid4()),
                tenant_id=tenant_id,
                report=item.kind,
                period=period,
                first_day=first,
                last_day=last,
                format=ARCHIVE_FORMAT,
                state=ArchiveState.RUNNING,
                progress=0,
                rows=None,
                size=None,
                sha256=None,
                error=None,
                created_at=now,
                updated_at=now,
            ),
            now - STALE_RUN,
        )
        if claimed is None:
            return False
        try:
            run = await self._reports.run(
                tenant_id,
                item.kind,
                claimed.first_day,
                claimed.last_day,
                item.interval,
                item.group_by,
            )
            await self._store.progress(claimed.id, 60, self._now())
            body = await self._reports.export(run, tenant_id, ARCHIVE_FORMAT)
            digest = hashlib.sha256(body).hexdigest()
            await self._store.finish(claimed.id, body, digest, len(run.table.rows), self._now())
        except Exception as exc:
            log.exception("report_archive_failed", tenant=tenant_id, report=item.kind.value)
            await self._store.fail(claimed.id, f"{type(exc).__name__}: {exc}", self._now())
            return False
        log.info(
            "report_archived",
            tenant=tenant_id,
            report=item.kind.value,
            period=period.value,
            first=str(claimed.first_day),
            sha256=digest,
        )
        return True

    async def list(
        self,
        tenant_id: str,
        report: ReportKind | None = None,
        period: Period | None = None,
        limit: int = 100,
    ) -> builtins.list[ReportArchive]:
        """The tenant's archives, newest period first."""
        return await self._store.list(tenant_id, report, period, limit)

    async def get(self, tenant_id: str, archive_id: str) -> ReportArchive:
        """One archive of the tenant (404 otherwise)."""
        found = await self._store.get(tenant_id, archive_id)
        if found is None:
            raise ArchiveNotFoundError(f"no report archive {archive_id!r}")
        return found

    async def download(self, tenant_id: str, archive_id: str) -> tuple[ReportArchive, bytes]:
        """A done archive and its file (404 while it is not done, or for another tenant)."""
        found = await self.get(tenant_id, archive_id)
        body = await self._store.body(tenant_id, archive_id)
        if body is None:
            raise ArchiveNotFoundError(f"report archive {archive_id!r} is {found.state.value}")
        return found, body
