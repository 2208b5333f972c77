"""``ccbridge recordings purge | export | offboard | verify-report``: by hand, with progress."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.bootstrap import secret_box
from ccbridge.db.engine import create_engine, create_session_factory
from ccbridge.db.repositories.recording_exports import ExportRepository
from ccbridge.db.repositories.recordings import RecordingRepository
from ccbridge.db.repositories.tenants import TenantRepository
from ccbridge.domain.access import TenantStatus
from ccbridge.domain.recordings.signing import verify_report as check
from ccbridge.domain.time import SystemClock
from ccbridge.ftp.push import FtplibTransport
from ccbridge.services.offboarding import OffboardingService
from ccbridge.services.recording_export import ExportService
from ccbridge.services.retention import RetentionService
from ccbridge.settings import Settings
from ccbridge.storage.recording_files import LocalRecordingFiles

recordings_app = typer.Typer(help="Recordings: retention purge and tenant off-boarding.")
T = TypeVar("T")


def _run(settings: Settings, work: Callable[[async_sessionmaker[AsyncSession]], Awaitable[T]]) -> T:
    async def main() -> T:
        engine = create_engine(settings.database_url)
        try:
            return await work(create_session_factory(engine))
        finally:
            await engine.dispose()

    return asyncio.run(main())


@recordings_app.command("purge")
def purge(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only count what would go.")] = False,
) -> None:
    """Delete recordings past each tenant's retention horizon (held ones stay); audited."""
    settings = Settings()

    async def work(sessions: async_sessionmaker[AsyncSession]) -> None:
        store = RecordingRepository(sessions, cipher=secret_box(settings))
        files = LocalRecordingFiles(settings.recordings.dir)
        service = RetentionService(store, files, SystemClock())
        dry = await service.purge(dry_run=True)
        for tenant, count in sorted(dry.eligible.items()):
            typer.echo(f"{tenant}: {count} recording(s) past the horizon")
        if dry_run:
            return
        total = sum(dry.eligible.values())
        with typer.progressbar(length=max(total, 1), label="purging") as bar:
            last = 0

            def step(done: int, _total: int) -> None:
                nonlocal last
                bar.update(done - last)
                last = done

            result = await service.purge(progress=step)
        typer.echo(f"deleted {result.deleted} recording(s)")

    _run(settings, work)


@recordings_app.command("export")
def export(
    tenant: Annotated[str, typer.Argument(help="Tenant whose recordings to push.")],
    date_from: Annotated[datetime, typer.Option("--from", help="Start (UTC), inclusive.")],
    date_to: Annotated[datetime, typer.Option("--to", help="End (UTC), exclusive.")],
    job_id: Annotated[str | None, typer.Option("--resume", help="Retry a stored job.")] = None,
) -> None:
    """Push a date range to the tenant's own FTP(S) server now, with a progress bar."""
    settings = Settings()

    async def work(sessions: async_sessionmaker[AsyncSession]) -> None:
        store = RecordingRepository(sessions, cipher=secret_box(settings))
        files = LocalRecordingFiles(settings.recordings.dir)
        transport = FtplibTransport(
            max_bytes_per_second=settings.recordings.export_max_bytes_per_second
        )
        service = ExportService(store, ExportRepository(sessions), files, transport, SystemClock())
        if job_id is None:
            start, end = date_from.replace(tzinfo=UTC), date_to.replace(tzinfo=UTC)
            job = await service.create(tenant, start, end)
        else:
            job = await service.status(job_id, tenant)
        run = asyncio.create_task(service.run(job.id))
        with typer.progressbar(length=max(job.total_bytes, 1), label=f"export {job.id}") as bar:
            shown = 0
            while not run.done():
                now = (await service.status(job.id)).sent_bytes
                bar.update(now - shown)
                shown = now
                await asyncio.sleep(0.2)
            bar.update(job.total_bytes - shown)
        done = await run
        typer.echo(json.dumps(done.report or {}, ensure_ascii=False))

    _run(settings, work)


@recordings_app.command("offboard")
def offboard(
    tenant: Annotated[str, typer.Argument(help="A terminated tenant's id.")],
    skip_export: Annotated[
        bool, typer.Option("--skip-export", help="Purge without a final export.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Final export, then delete every recording and call row of the tenant; print the report."""
    settings = Settings()
    if not yes:
        typer.confirm(f"Delete ALL recordings and call data of {tenant}?", abort=True)

    async def work(sessions: async_sessionmaker[AsyncSession]) -> None:
        async with sessions() as session:
            found = await TenantRepository(session).get(tenant)
        if found is None or found.status is not TenantStatus.TERMINATED:
            typer.echo(f"refusing: tenant {tenant} is not terminated", err=True)
            raise typer.Exit(2)
        store = RecordingRepository(sessions, cipher=secret_box(settings))
        exports = ExportRepository(sessions)
        files = LocalRecordingFiles(settings.recordings.dir)
        clock = SystemClock()
        export = ExportService(store, exports, files, FtplibTransport(), clock)
        key = settings.recordings.link_secret.get_secret_value().encode()
        service = OffboardingService(store, exports, export, files, clock, key)
        job = None if skip_export else await service.final_export(tenant)
        typer.echo(f"final export: {job or 'skipped'}")
        report = await service.purge(tenant, job)
        typer.echo(json.dumps({"manifest": report.manifest, "signature": report.signature}))

    _run(settings, work)


@recordings_app.command("verify-report")
def verify_report(report_id: Annotated[str, typer.Argument()]) -> None:
    """Check a stored purge report's HMAC signature (exit 1 when it does not match)."""
    settings = Settings()

    async def work(sessions: async_sessionmaker[AsyncSession]) -> bool:
        stored = await ExportRepository(sessions).purge_report(report_id)
        if stored is None:
            typer.echo("no such report", err=True)
            raise typer.Exit(2)
        key = settings.recordings.link_secret.get_secret_value().encode()
        return check(key, stored[0], stored[1])

    ok = _run(settings, work)
    typer.echo("signature OK" if ok else "signature MISMATCH")
    raise typer.Exit(0 if ok else 1)
