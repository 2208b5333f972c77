"""Off-boarding a terminated tenant: final export, then a verifiable purge with a signed report.

REC-06/SEC-06: the client's data is returned and no copy is kept. The report lists what was
deleted (recording ids, paths and SHA-256, counts of call rows) without customer data, and
is signed with Ed25519 over its canonical JSON, so the client verifies it with our public key
alone (``GET /api/v1/purge-reports/public-key``, ``ccbridge recordings public-key``).

The state lives in ``tenant_offboardings``: a restarted process resumes the final export
where its per-file state left it, and the purge deletes rows, stores the report and audits
in one transaction, so a crash leaves either the data or the report, never neither.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import structlog

from ccbridge.domain.access import AuditEntry, Principal, TenantStatus
from ccbridge.domain.recordings.export import (
    ExportJob,
    ExportStatus,
    Offboarding,
    OffboardingStatus,
)
from ccbridge.domain.time import Clock
from ccbridge.errors import ConflictError, NotFoundError
from ccbridge.services.audit import AuditRecorder
from ccbridge.services.recording_export import ExportService
from ccbridge.services.recording_ports import (
    ExportStore,
    OffboardingStore,
    RecordingFiles,
    RecordingStore,
    ReportSigner,
    SignedReport,
)

log = structlog.get_logger(__name__)

ACTOR = "system:offboarding"
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """The signed record of an off-boarding purge."""

    id: str
    manifest: dict[str, Any]
    signature: str


@dataclass(frozen=True, slots=True)
class OffboardingView:
    """An off-boarding with its live progress (the export job, files purged so far)."""

    state: Offboarding
    export: ExportJob | None


class OffboardingService:
    """Export everything the tenant has, then delete it all and sign what was deleted."""

    def __init__(
        self,
        store: RecordingStore,
        exports: ExportStore,
        export_service: ExportService,
        files: RecordingFiles,
        clock: Clock,
        signer: ReportSigner,
        offboardings: OffboardingStore | None = None,
        audit: AuditRecorder | None = None,
    ) -> None:
        self._store = store
        self._exports = exports
        self._export = export_service
        self._files = files
        self._clock = clock
        self._signer = signer
        self._state = offboardings
        self._audit = audit
        self._live: dict[str, tuple[int, int]] = {}

    @property
    def signer(self) -> ReportSigner:
        """The report signer (its public key is served to clients)."""
        return self._signer

    # --- the resumable job ---------------------------------------------------------------

    def _states(self) -> OffboardingStore:
        if self._state is None:
            raise RuntimeError("off-boarding state store not wired")
        return self._state

    async def start(self, who: Principal, tenant: str, *, skip_export: bool) -> Offboarding:
        """Record the request (a terminated tenant only); the caller then runs :meth:`run`."""
        status = await self._store.tenant_status(tenant)
        if status is None:
            raise NotFoundError(f"tenant {tenant} not found")
        if status != TenantStatus.TERMINATED.value:
            raise ConflictError(
                f"tenant {tenant} is {status}; only a terminated tenant is off-boarded",
                field="status",
            )
        existing = await self._states().get(tenant)
        if existing is not None and existing.status is not OffboardingStatus.FAILED:
            raise ConflictError(
                f"off-boarding of {tenant} is already {existing.status.value}", field="tenant"
            )
        now = self._clock.now()
        state = Offboarding(
            tenant=tenant,
            status=OffboardingStatus.PENDING,
            skip_export=skip_export,
            requested_by=who.actor,
            started_at=now,
            updated_at=now,
            export_job=existing.export_job if existing else None,
        )
        await self._states().put(state)
        if self._audit is not None:
            await self._audit.record(
                who,
                tenant,
                "tenant.offboarding_start",
                "tenant",
                tenant,
                {"skip_export": skip_export},
            )
        return state

    async def _save(self, state: Offboarding, **changes: Any) -> Offboarding:
        state = replace(state, updated_at=self._clock.now(), **changes)
        await self._states().put(state)
        return state

    async def run(self, tenant: str, progress: Progress | None = None) -> Offboarding:
        """Final export (resumed if it was under way), then the purge; idempotent."""
        state = await self._states().get(tenant)
        if state is None:
            raise NotFoundError(f"no off-boarding of {tenant}")
        if state.status is OffboardingStatus.DONE:
            return state
        try:
            job_id = state.export_job
            if not state.skip_export and state.status is not OffboardingStatus.PURGING:
                if job_id is None:
                    job_id = (await self._new_final_export(tenant)).id
                state = await self._save(
                    state, status=OffboardingStatus.EXPORTING, export_job=job_id, error=None
                )
                done = await self._export.run(job_id)
                if done.status is not ExportStatus.DONE:
                    raise ConflictError(f"final export {job_id} did not finish: {done.error}")
            state = await self._save(state, status=OffboardingStatus.PURGING, error=None)
            report = await self._purge_once(tenant, job_id, progress)
            done_at = self._clock.now()
            state = await self._save(
                state,
                status=OffboardingStatus.DONE,
                report_id=report.id,
                finished_at=done_at,
                purge_done=len(report.manifest["recordings"]),
                purge_total=len(report.manifest["recordings"]),
            )
        except Exception as exc:
            await self._save(state, status=OffboardingStatus.FAILED, error=f"{exc}"[:1000])
            log.warning("offboarding_failed", tenant=tenant, error=str(exc))
            raise
        finally:
            self._live.pop(tenant, None)
        return state

    async def _purge_once(
        self, tenant: str, job_id: str | None, progress: Progress | None
    ) -> PurgeReport:
        """The purge, unless a crash hit after its transaction: then the stored report."""
        state = await self._states().get(tenant)
        since = state.started_at if state else EPOCH
        for stored in reversed(await self._exports.purge_reports_of(tenant)):
            if stored.created_at >= since:
                return PurgeReport(stored.id, stored.manifest, stored.signature)
        return await self.purge(tenant, job_id, progress)

    async def run_pending(self) -> int:
        """Resume off-boardings a stopped process left unfinished; return how many finished."""
        if self._state is None:
            return 0
        finished = 0
        for state in await self._state.unfinished():
            try:
                await self.run(state.tenant)
                finished += 1
            except Exception:
                log.exception("offboarding_resume_failed", tenant=state.tenant)
        return finished

    async def status(self, tenant: str) -> OffboardingView:
        """The stored state with the live purge count and the export's byte progress."""
        state = await self._states().get(tenant)
        if state is None:
            raise NotFoundError(f"no off-boarding of {tenant}")
        live = self._live.get(tenant)
        if live is not None:
            state = replace(state, purge_done=live[0], purge_total=live[1])
        job = None
        if state.export_job is not None:
            try:
                job = await self._export.status(state.export_job)
            except NotFoundError:
                job = None
        return OffboardingView(state, job)

    async def report(self, report_id: str) -> tuple[dict[str, Any], str]:
        """A stored purge report (manifest, signature); kept after the tenant's data."""
        stored = await self._exports.purge_report(report_id)
        if stored is None:
            raise NotFoundError(f"purge report {report_id} not found")
        return stored

    # --- the steps -----------------------------------------------------------------------

    async def _new_final_export(self, tenant: str) -> ExportJob:
        return await self._export.create(tenant, EPOCH, self._clock.now(), kind="final")

    async def final_export(self, tenant: str) -> str:
        """Push every recording of the tenant; return the job id (raises if it fails)."""
        job = await self._new_final_export(tenant)
        done = await self._export.run(job.id)
        if done.status is not ExportStatus.DONE:
            raise ConflictError(f"final export {job.id} did not finish: {done.error}")
        return job.id

    async def purge(
        self,
        tenant: str,
        export_job: str | None,
        progress: Progress | None = None,
    ) -> PurgeReport:
        """Delete the tenant's files and call data (recordings, calls, call parameters, events,
        IVR call logs, webhooks), holds and policy; sign a report with every count."""
        recs = await self._store.all_of_tenant(tenant)
        total = len(recs)
        deleted_files = 0
        self._live[tenant] = (0, total)
        for i, rec in enumerate(recs, 1):
            if await self._files.delete(rec.path):
                deleted_files += 1
            self._live[tenant] = (i, total)
            if progress is not None:
                progress(i, total)
        leftovers = await self._files.delete_tree(tenant)  # files the index never knew
        now = self._clock.now()
        report_id = secrets.token_hex(16)
        manifest: dict[str, Any] = {
            "report_id": report_id,
            "tenant": tenant,
            "purged_at": now.isoformat(),
            "final_export": export_job,
            "recordings": [
                {
                    "id": r.id,
                    "path": r.path,
                    "sha256": r.sha256,
                    "status": r.status.value,
                    "started_at": r.started_at.isoformat(),
                }
                for r in recs
            ],
            "files_deleted": deleted_files + leftovers,
            "signature_algorithm": self._signer.algorithm,
            "key_id": self._signer.key_id,
        }
        entry = AuditEntry(
            at=now,
            tenant_id=tenant,
            actor=ACTOR,
            action="tenant.data_purge",
            object_type="tenant",
            object_id=tenant,
            detail={"report_id": report_id, "recordings": total},
        )

        def seal(rows: Mapping[str, int]) -> SignedReport:
            for kind, count in sorted(rows.items()):
                manifest[f"{kind}_rows_deleted"] = count
            return SignedReport(report_id, tenant, now, manifest, self._signer.sign(manifest))

        report = await self._store.erase_tenant(tenant, entry, seal)
        log.info("tenant_data_purged", tenant=tenant, recordings=total)
        return PurgeReport(report.id, report.manifest, report.signature)

    def verify(self, manifest: dict[str, Any], signature: str) -> bool:
        """Say whether *signature* is this service's signature of *manifest*."""
        return self._signer.verify(manifest, signature)
