"""Off-boarding a terminated tenant: final export, then a verifiable purge with a signed report.

REC-06/SEC-06: the client's data is returned and no copy is kept. The report lists what was
deleted (recording ids, paths and SHA-256, counts of call rows) without customer data, and
is signed with HMAC-SHA256 over its canonical JSON, so anyone holding the key can verify it
was not altered (``ccbridge recordings verify-report``).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import structlog

from ccbridge.domain.access import AuditEntry
from ccbridge.domain.recordings.export import ExportStatus
from ccbridge.domain.recordings.signing import sign_report, verify_report
from ccbridge.domain.time import Clock
from ccbridge.errors import ConflictError
from ccbridge.services.recording_export import ExportService
from ccbridge.services.recording_ports import ExportStore, RecordingFiles, RecordingStore

log = structlog.get_logger(__name__)

ACTOR = "system:offboarding"


@dataclass(frozen=True, slots=True)
class PurgeReport:
    """The signed record of an off-boarding purge."""

    id: str
    manifest: dict[str, Any]
    signature: str


class OffboardingService:
    """Export everything the tenant has, then delete it all and sign what was deleted."""

    def __init__(
        self,
        store: RecordingStore,
        exports: ExportStore,
        export_service: ExportService,
        files: RecordingFiles,
        clock: Clock,
        key: bytes,
    ) -> None:
        self._store = store
        self._exports = exports
        self._export = export_service
        self._files = files
        self._clock = clock
        self._key = key

    async def final_export(self, tenant: str) -> str:
        """Push every recording of the tenant; return the job id (raises if it fails)."""
        job = await self._export.create(
            tenant, datetime(2000, 1, 1, tzinfo=UTC), self._clock.now(), kind="final"
        )
        done = await self._export.run(job.id)
        if done.status is not ExportStatus.DONE:
            raise ConflictError(f"final export {job.id} did not finish: {done.error}")
        return job.id

    async def purge(
        self,
        tenant: str,
        export_job: str | None,
        progress: Callable[[int, int], None] | None = None,
    ) -> PurgeReport:
        """Delete the tenant's files, recording rows, holds, policy and call rows; sign it."""
        recs = await self._store.all_of_tenant(tenant)
        total = len(recs)
        deleted_files = 0
        for i, rec in enumerate(recs, 1):
            if await self._files.delete(rec.path):
                deleted_files += 1
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
        rec_rows, call_rows = await self._store.erase_tenant(tenant, entry)
        manifest["recording_rows_deleted"] = rec_rows
        manifest["call_rows_deleted"] = call_rows
        signature = sign_report(self._key, manifest)
        await self._exports.add_purge_report(report_id, tenant, now, manifest, signature)
        log.info("tenant_data_purged", tenant=tenant, recordings=total, calls=call_rows)
        return PurgeReport(report_id, manifest, signature)

    def verify(self, manifest: dict[str, Any], signature: str) -> bool:
        """Say whether *signature* is this service's signature of *manifest*."""
        return verify_report(self._key, manifest, signature)
