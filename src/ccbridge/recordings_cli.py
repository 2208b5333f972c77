"""``ccbridge recordings purge | export | offboard | verify-report``: by hand, with progress."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from ccbridge.bootstrap import egress_policy, report_signer, secret_box
from ccbridge.crypto.report_signing import verify_with_public_key
from ccbridge.db.access_uow import SqlAccessUnitOfWork
from ccbridge.db.engine import create_engine, create_session_factory
from ccbridge.db.journal import SqlEventSettings
from ccbridge.db.repositories.recording_exports import ExportRepository, OffboardingRepository
from ccbridge.db.repositories.recordings import RecordingRepository
from ccbridge.domain.access import Principal, Role
from ccbridge.domain.recordings.export import OffboardingStatus
from ccbridge.domain.recordings.signing import is_legacy_report_signature
from ccbridge.domain.recordings.signing import verify_report as check_legacy
from ccbridge.domain.time import SystemClock
from ccbridge.errors import ConflictError, NotFoundError
from ccbridge.ftp.push import FtplibTransport
from ccbridge.services.audit import AuditRecorder
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
        service = ExportService(
            store,
            ExportRepository(sessions),
            files,
            transport,
            SystemClock(),
            egress=egress_policy(settings, SqlEventSettings(sessions)),
        )
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
    """Final export, then delete every recording and call row of the tenant; print the report.

    The same resumable job as ``POST /api/v1/tenants/{t}/offboarding``: run it again after
    an interruption and it continues where it stopped.
    """
    settings = Settings()
    if not yes:
        typer.confirm(f"Delete ALL recordings and call data of {tenant}?", abort=True)

    async def work(sessions: async_sessionmaker[AsyncSession]) -> None:
        service = _offboarding(settings, sessions)
        try:
            await service.start(CLI_ADMIN, tenant, skip_export=skip_export)
        except ConflictError as exc:
            if exc.field != "tenant":  # not terminated: refuse
                typer.echo(f"refusing: {exc.detail}", err=True)
                raise typer.Exit(2) from None
            typer.echo(f"resuming: {exc.detail}")
        except NotFoundError as exc:
            typer.echo(f"refusing: {exc.detail}", err=True)
            raise typer.Exit(2) from None
        run = asyncio.create_task(service.run(tenant))
        await _follow(service, tenant, run)
        state = await run
        typer.echo(f"final export: {state.export_job or 'skipped'}")
        report = await ExportRepository(sessions).purge_report(state.report_id or "")
        assert report is not None
        typer.echo(json.dumps({"manifest": report[0], "signature": report[1]}, ensure_ascii=False))

    _run(settings, work)


CLI_ADMIN = Principal(actor="cli:recordings", role=Role.PLATFORM_ADMIN, tenant_id=None)


def _offboarding(
    settings: Settings, sessions: async_sessionmaker[AsyncSession]
) -> OffboardingService:
    store = RecordingRepository(sessions, cipher=secret_box(settings))
    exports = ExportRepository(sessions)
    files = LocalRecordingFiles(settings.recordings.dir)
    clock = SystemClock()
    transport = FtplibTransport(
        max_bytes_per_second=settings.recordings.export_max_bytes_per_second
    )
    egress = egress_policy(settings, SqlEventSettings(sessions))
    export = ExportService(store, exports, files, transport, clock, egress=egress)
    audit = AuditRecorder(lambda: SqlAccessUnitOfWork(sessions), clock.now)
    return OffboardingService(
        store,
        exports,
        export,
        files,
        clock,
        report_signer(settings),
        OffboardingRepository(sessions),
        audit,
    )


async def _follow(service: OffboardingService, tenant: str, run: asyncio.Task[object]) -> None:
    """One progress bar per phase: bytes of the final export, then recordings purged."""
    phase: OffboardingStatus | None = None
    stack = contextlib.ExitStack()
    bar: Any = None
    shown = 0
    with stack:
        while not run.done():
            view = await service.status(tenant)
            st = view.state.status
            if st is OffboardingStatus.EXPORTING and view.export is not None:
                total, now = view.export.total_bytes, view.export.sent_bytes
            elif st is OffboardingStatus.PURGING:
                total, now = view.state.purge_total, view.state.purge_done
            else:
                await asyncio.sleep(0.1)
                continue
            if st is not phase:
                stack.close()
                label = "final export" if st is OffboardingStatus.EXPORTING else "purging"
                bar = stack.enter_context(typer.progressbar(length=max(total, 1), label=label))
                phase, shown = st, 0
            bar.update(now - shown)
            shown = now
            await asyncio.sleep(0.2)


@recordings_app.command("public-key")
def public_key() -> None:
    """Print the Ed25519 public key (PEM) that purge reports are verified with."""
    signer = report_signer(Settings())
    typer.echo(signer.public_key_pem().rstrip())
    typer.echo(f"key id: {signer.key_id}", err=True)


@recordings_app.command("verify-report")
def verify_report(
    report_id: Annotated[str | None, typer.Argument(help="A stored report's id.")] = None,
    report_file: Annotated[
        Path | None,
        typer.Option("--file", help='A report as JSON {"manifest": …, "signature": …}.'),
    ] = None,
    public_key_file: Annotated[
        Path | None,
        typer.Option("--public-key", help="Verify with this PEM public key (no secret needed)."),
    ] = None,
) -> None:
    """Check a purge report's Ed25519 signature (exit 1 when it does not match).

    With ``--file`` and ``--public-key`` no database and no secret are needed: what a client
    does. Reports signed before Ed25519 (HMAC hex) are checked with the link secret.
    """
    settings = Settings()
    if report_file is not None:
        loaded = json.loads(report_file.read_text(encoding="utf-8"))
        stored: tuple[dict[str, Any], str] | None = (loaded["manifest"], loaded["signature"])
    elif report_id is not None:

        async def work(sessions: async_sessionmaker[AsyncSession]) -> Any:
            return await ExportRepository(sessions).purge_report(report_id)

        stored = _run(settings, work)
    else:
        typer.echo("name a report id or --file", err=True)
        raise typer.Exit(2)
    if stored is None:
        typer.echo("no such report", err=True)
        raise typer.Exit(2)
    manifest, signature = stored
    if is_legacy_report_signature(signature):
        key = settings.recordings.link_secret.get_secret_value().encode()
        ok = check_legacy(key, manifest, signature)
    else:
        if public_key_file is not None:
            pem = public_key_file.read_text(encoding="utf-8")
        else:
            pem = report_signer(settings).public_key_pem()
        ok = verify_with_public_key(pem, manifest, signature)
    typer.echo("signature OK" if ok else "signature MISMATCH")
    raise typer.Exit(0 if ok else 1)
